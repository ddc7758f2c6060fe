"""Executed Python bytecode instructions per operation: a deterministic measure of the wrapper's own cost.

    python benchmarks/instructions.py [--json] [--ours-only] [--case OPERATION] [--runs N] [--syscalls]
    python -m kcapi_hashlib vm -- env PYTHONPATH=$PWD python3 benchmarks/instructions.py   # host without AF_ALG

Each case is a setup and an operation (source text, as tests/support/syscalls.py's steady_state takes them). For
each run the setup is executed, the operation once uncounted (warm-up: caches, pools and lazy imports filled, the
steady state), then once counted: on CPython < 3.12 under sys.settrace with frame.f_trace_opcodes = True (the
'opcode' events), on 3.12+ with sys.monitoring's INSTRUCTION events: every instruction of every Python frame
(the library's, the stdlib's, and the operation's own function: `def _op(): <op>`, a few instructions, as for
the references). C code runs uncounted, so a C implementation (hashlib) shows only the
instructions that call it. The garbage collector is off while counting (a collection would run finalizers at
an arbitrary point); the runs must agree (they are reported as "varies: ..." otherwise).

Per case: kcapi_hashlib, the reference the API mirrors (hashlib, the stdlib hmac, PyCryptodome: "n/a" where it
is not installed) and a raw AF_ALG loop in Python (one op socket bound, keyed and accepted once: os.write +
os.read per hash/MAC, sendmsg with the control messages + recv_into per cipher operation): the floor of any
Python AF_ALG wrapper. Ratios are kcapi_hashlib's count over theirs. --syscalls adds kcapi_hashlib's syscalls
per operation (strace -f -c, tests/support/syscalls.py steady_state; slow under user-mode-linux).
Benchmarks print; tests/kernel/test_instruction_budgets.py asserts budgets on kcapi_hashlib's counts.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import textwrap
from pathlib import Path
from types import FrameType
from typing import Any, Callable, NamedTuple, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/instructions.py` from anywhere

_DATA = "data = bytes(range(64))\n"
_KEY = "key = bytes(range(32))\n"
_NONCE = "nonce = bytes(range(12))\n"

# The raw loops: one AF_ALG op socket per (type, name), bound, keyed and accepted once (untraced, in setup).
_RAW = """\
import os, socket, struct
def _raw_op(kind, name, key=None, authsize=0):
    tfm = socket.socket(38, socket.SOCK_SEQPACKET, 0)  # AF_ALG
    tfm.bind((kind, name))
    if key is not None:
        tfm.setsockopt(279, 1, key)  # SOL_ALG, ALG_SET_KEY
    if authsize:
        tfm.setsockopt(279, 5, None, authsize)  # ALG_SET_AEAD_AUTHSIZE: before accept() (else EBUSY)
    op, _ = tfm.accept()
    return tfm, op
"""
_CMSG_ENC = "(279, 3, struct.pack('I', 1))"  # ALG_SET_OP: ALG_OP_ENCRYPT


class Case(NamedTuple):
    name: str
    setup: str  # shared by every implementation
    impls: dict[str, tuple[str, str]]  # label -> (extra setup, op); "kcapi_hashlib" first, "raw AF_ALG" last


CASES: list[Case] = [
    Case("sha256(64 B).digest()", _DATA, {
        "kcapi_hashlib": ("import kcapi_hashlib", "kcapi_hashlib.sha256(data).digest()"),
        "hashlib": ("import hashlib", "hashlib.sha256(data).digest()"),
        "raw AF_ALG": (_RAW + "tfm, op = _raw_op('hash', 'sha256')\nfd = op.fileno()",
                       "os.write(fd, data)\nos.read(fd, 32)"),
    }),
    Case("h.update(64 B)", _DATA, {
        "kcapi_hashlib": ("import kcapi_hashlib\nh = kcapi_hashlib.sha256()", "h.update(data)"),
        "hashlib": ("import hashlib\nh = hashlib.sha256()", "h.update(data)"),
    }),
    Case('hmac.new(k, 64 B, "sha256").digest()', _DATA + _KEY, {
        "kcapi_hashlib": ("from kcapi_hashlib import hmac", "hmac.new(key, data, 'sha256').digest()"),
        "stdlib hmac": ("import hmac", "hmac.new(key, data, 'sha256').digest()"),
        "raw AF_ALG": (_RAW + "tfm, op = _raw_op('hash', 'hmac(sha256)', key)\nfd = op.fileno()",
                       "os.write(fd, data)\nos.read(fd, 32)"),
    }),
    Case('hmac.digest(k, 64 B, "sha256")', _DATA + _KEY, {
        "kcapi_hashlib": ("from kcapi_hashlib import hmac", "hmac.digest(key, data, 'sha256')"),
        "stdlib hmac": ("import hmac", "hmac.digest(key, data, 'sha256')"),
        "raw AF_ALG": (_RAW + "tfm, op = _raw_op('hash', 'hmac(sha256)', key)\nfd = op.fileno()",
                       "os.write(fd, data)\nos.read(fd, 32)"),
    }),
    Case("AES.new(k, MODE_GCM, nonce=n).encrypt_and_digest(64 B)", _DATA + _KEY + _NONCE, {
        "kcapi_hashlib": ("from kcapi_hashlib.Cipher import AES",
                          "AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(data)"),
        "PyCryptodome": ("from Crypto.Cipher import AES",
                         "AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(data)"),
        "raw AF_ALG": (_RAW + "tfm, op = _raw_op('aead', 'gcm(aes)', key, 16)\nout = bytearray(80)\n"
                       f"cmsg = [{_CMSG_ENC}, (279, 2, struct.pack('I', 12) + nonce), (279, 4, struct.pack('I', 0))]",
                       "op.sendmsg([data], cmsg)\nop.recv_into(out)"),
    }),
    Case("AES.new(k, MODE_CTR, nonce=n).encrypt(64 B)", _DATA + _KEY + "nonce = bytes(range(8))\n", {
        "kcapi_hashlib": ("from kcapi_hashlib.Cipher import AES",
                          "AES.new(key, AES.MODE_CTR, nonce=nonce).encrypt(data)"),
        "PyCryptodome": ("from Crypto.Cipher import AES", "AES.new(key, AES.MODE_CTR, nonce=nonce).encrypt(data)"),
        "raw AF_ALG": (_RAW + "tfm, op = _raw_op('skcipher', 'ctr(aes)', key)\nout = bytearray(64)\n"
                       f"cmsg = [{_CMSG_ENC}, (279, 2, struct.pack('I', 16) + nonce + bytes(8))]",
                       "op.sendmsg([data], cmsg)\nop.recv_into(out)"),
    }),
]  # fmt: skip


def _prepare(setup: str, op: str) -> Callable[[], Any]:
    """Execute setup in a fresh namespace and return `def _op(): <op>` defined in it."""
    namespace: dict[str, Any] = {"__name__": "__instructions__"}
    source = f"{textwrap.dedent(setup)}\ndef _op():\n{textwrap.indent(textwrap.dedent(op), '    ')}\n"
    exec(compile(source, "<instructions case>", "exec"), namespace)
    fn: Callable[[], Any] = namespace["_op"]
    return fn


def count_instructions(fn: Callable[[], Any]) -> int:
    """Bytecode instructions executed by one call of fn, in every Python frame it enters (after a warm-up)."""
    fn()  # warm-up: the steady state
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        return _count_monitoring(fn) if hasattr(sys, "monitoring") else _count_settrace(fn)
    finally:
        if enabled:
            gc.enable()


def _count_settrace(fn: Callable[[], Any]) -> int:
    """CPython < 3.12: sys.settrace, 'opcode' events (f_trace_opcodes set in each frame's 'call' event)."""
    n = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal n
        if event == "call":
            frame.f_trace_opcodes = True
        elif event == "opcode":
            n += 1
        return tracer

    sys.settrace(tracer)  # traces frames called from here on, not this one
    try:
        fn()
    finally:
        sys.settrace(None)
    return n


def _count_monitoring(fn: Callable[[], Any]) -> int:
    """CPython 3.12+: sys.monitoring INSTRUCTION events (there settrace with f_trace_opcodes set in the 'call'
    event reported no opcode events of the traced frame itself: 0 for `hashlib.sha256(data).digest()` on 3.13).
    Events fire in every frame, this one included after set_events: its instructions are not counted; the
    callback's own are never reported."""
    mon: Any = getattr(sys, "monitoring")  # noqa: B009 (typeshed has it from 3.12 only; mypy checks as 3.11)
    n = 0
    own = _count_monitoring.__code__

    def instruction(code: Any, offset: int) -> None:
        nonlocal n
        if code is not own:
            n += 1

    tool = next(i for i in (4, 3) if mon.get_tool(i) is None)  # 0-2 and 5 are named for other uses
    mon.use_tool_id(tool, "benchmarks/instructions.py")
    try:
        mon.register_callback(tool, mon.events.INSTRUCTION, instruction)
        mon.set_events(tool, mon.events.INSTRUCTION)
        try:
            fn()
        finally:
            mon.set_events(tool, 0)
    finally:
        mon.register_callback(tool, mon.events.INSTRUCTION, None)
        mon.free_tool_id(tool)
    return n


def measure(setup: str, op: str, runs: int) -> list[int]:
    """Instruction counts of `runs` independent runs (a fresh setup each: the same state every time)."""
    return [count_instructions(_prepare(setup, op)) for _ in range(runs)]


def collect(runs: int, ours_only: bool, names: Optional[list[str]] = None) -> dict[str, dict[str, Any]]:
    """{case: {implementation: [count per run] or "n/a: why"}}; names: only these cases."""
    unknown = set(names or ()) - {case.name for case in CASES}
    if unknown:
        raise SystemExit(f"no case {', '.join(sorted(unknown))} (have: {'; '.join(c.name for c in CASES)})")
    results: dict[str, dict[str, Any]] = {}
    for case in CASES:
        if names and case.name not in names:
            continue
        row: dict[str, Any] = {}
        for label, (extra, op) in case.impls.items():
            if ours_only and label != "kcapi_hashlib":
                continue
            try:
                row[label] = measure(case.setup + extra, op, runs)
            except ImportError as e:
                if label == "kcapi_hashlib":
                    raise
                row[label] = f"n/a: {e}"
            except OSError as e:
                if label == "kcapi_hashlib":
                    raise
                row[label] = f"n/a: {type(e).__name__}: {e.strerror or e}"
        results[case.name] = row
    return results


def _syscalls(case: Case) -> str:
    from tests.support.syscalls import steady_state

    extra, op = case.impls["kcapi_hashlib"]
    try:
        return f"{steady_state(case.setup + extra, op, n=100).per_op:g}"
    except Exception as e:  # report, don't stop the run
        return f"n/a ({type(e).__name__})"


def _cell(value: Any) -> tuple[str, Optional[int]]:
    if isinstance(value, str):
        return value, None
    if len(set(value)) != 1:
        return "varies: " + "/".join(map(str, value)), None
    return str(value[0]), value[0]


def report(results: dict[str, dict[str, Any]], syscalls: bool) -> None:
    import platform

    print(f"# Python {platform.python_version()} ({sys.executable}); kernel {platform.release()}")
    print("# bytecode instructions per operation (steady state, every Python frame); ratio = kcapi_hashlib / it")
    print(f"{'OPERATION':56} {'IMPLEMENTATION':15} {'INSTR/OP':>9} {'RATIO':>8}" + ("  SYSCALLS/OP" * syscalls))
    for case in CASES:
        if case.name not in results:
            continue
        row = results[case.name]
        _, ours = _cell(row["kcapi_hashlib"])
        for label, value in row.items():
            text, n = _cell(value)
            ratio = f"{ours / n:.1f}x" if ours is not None and n else "-"
            line = f"{case.name:56} {label:15} {text:>9} {ratio if label != 'kcapi_hashlib' else '':>8}"
            if syscalls and label == "kcapi_hashlib":
                line += f"  {_syscalls(case)}"
            print(line.rstrip(), flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/instructions.py", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print {case: {implementation: [counts]}} as JSON")
    parser.add_argument("--ours-only", action="store_true", help="only kcapi_hashlib's counts (no references)")
    parser.add_argument("--case", action="append", help="only this case (its OPERATION text exactly)")
    parser.add_argument("--runs", type=int, default=2, help="independent runs per count (default 2; must agree)")
    parser.add_argument("--syscalls", action="store_true", help="also kcapi_hashlib's syscalls/op (strace -f -c)")
    args = parser.parse_args(argv)
    results = collect(args.runs, args.ours_only, args.case)
    if args.json:
        print(json.dumps(results))
    else:
        report(results, args.syscalls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
