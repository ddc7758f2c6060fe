"""Run the benchmarks: every benchmarks/bench_*.py module's cases (the interface is in benchmarks/_common.py).

    python benchmarks/run.py [--quick] [--group G] [--case TEXT] [--sizes 64,4K,1M,64M]
                             [--module bench_hash] [--min-time S] [--repeats N] [--no-syscalls]
    python -m kcapi_hashlib vm -- python benchmarks/run.py      # on a host without AF_ALG

For every case (an operation on `size` bytes) each implementation is timed in this process: the best of
--repeats runs, each at least --min-time seconds long, printed as operations/s and MiB/s with its speed
relative to kcapi_hashlib (2.00x = twice as fast as kcapi_hashlib). External commands (libkcapi's kcapi-dgst,
coreutils) are timed as whole processes, start-up included. The kcapi_hashlib row also shows the syscalls
one operation costs, counted with `strace -f -c` in fresh interpreters (tests.support.syscalls.steady_state:
(count for n+1 operations - count for 1) / n, every syscall of the process). The CHECK column says whether
the implementations agreed on the result.

Anchors (benchmarks/anchors.py; --no-anchors to skip): for cases with a kernel counterpart, rows for the
kernel's own speed (tcrypt), libkcapi's C API (a reused handle; its one-shot helpers) and a raw AF_ALG socket
loop in Python, with VS KCAPI as above, and a line "kcapi_hashlib / anchor" (1.00x = as fast as the anchor).
Missing pieces print "n/a: why".

PBKDF2's floor (benchmarks/pbkdf2.py, printed after the cases when the kdf group runs): iterations/s and
syscalls/iteration of kcapi_hashlib.pbkdf2_hmac (io_uring chain where the kernel allows it, and send/recv), a
raw send+recv loop on one keyed hmac op socket, and hashlib.pbkdf2_hmac, for sha1, sha256 and sha512.

Bytecode instructions per operation (benchmarks/instructions.py, printed last when no --group, --case or
--module narrows the run): kcapi_hashlib's hot paths next to hashlib, the stdlib hmac, PyCryptodome and a raw
AF_ALG loop, counted deterministically.

--quick: sizes 64 B, 4 KiB and 1 MiB, shorter timings. Inside user-mode-linux every syscall costs ~25 us,
so there the syscall count decides small-input speed. Benchmarks print; they never assert.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/run.py` from anywhere

from benchmarks._common import Case  # noqa: E402

DEFAULT_SIZES = "64,4K,1M,64M"
QUICK_SIZES = "64,4K,1M"
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GIB": 1 << 30}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if m is None or m.group(2).upper() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 64, 4K, 1M)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def format_size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def time_call(fn: Callable[[], object], min_time: float, repeats: int) -> float:
    """Seconds per call: the best of `repeats` batches, each batch long enough to last about min_time."""
    start = time.perf_counter()
    fn()  # warm-up: binds tfms, fills pools, loads modules
    one = time.perf_counter() - start
    loops = 1
    if one < min_time:
        # Calibrate on a short batch, then size the batches to last min_time.
        while True:
            start = time.perf_counter()
            for _ in range(loops):
                fn()
            elapsed = time.perf_counter() - start
            if elapsed >= min_time / 10 or loops >= 1 << 24:
                break
            loops *= 10
        loops = max(1, int(loops * min_time / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


def time_process(argv: list[str], repeats: int, env: dict[str, str]) -> tuple[float, bytes]:
    """Best wall time of running argv to completion (start-up included), and its stdout."""
    best = float("inf")
    out = b""
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=600)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"exit status {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}")
        best = min(best, elapsed)
        out = proc.stdout
    return best, out


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _result_key(value: object) -> Optional[str]:
    """A comparable form of an operation's result (hex), or None where it can't be compared."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str):
        return value.lower()
    return None


def _external_key(stdout: bytes) -> Optional[str]:
    first = stdout.split()[:1]
    if first and re.fullmatch(rb"\\?[0-9a-fA-F]{8,}", first[0]):
        return first[0].lstrip(b"\\").decode().lower()
    return None


class Row:
    COLUMNS = (("CASE", 23), ("SIZE", 7), ("IMPLEMENTATION", 27), ("OPS/S", 12), ("MiB/S", 9),
               ("VS KCAPI", 9), ("CHECK", 8), ("SYSCALLS/OP (kcapi_hashlib)", 0))  # fmt: skip

    @classmethod
    def header(cls) -> str:
        return cls.line([name for name, _ in cls.COLUMNS])

    @classmethod
    def line(cls, cells: list[str]) -> str:
        parts = []
        for (name, width), cell in zip(cls.COLUMNS, cells):
            right = name in ("OPS/S", "MiB/S", "VS KCAPI")
            parts.append(cell.rjust(width) if right else cell.ljust(width))
        return "  ".join(parts).rstrip()


def _syscalls(case: Case, n_max: int) -> str:
    from tests.support.syscalls import steady_state

    if not case.op:
        return "-"
    if shutil.which("strace") is None:
        return "n/a (strace not installed)"
    n = max(2, min(n_max, (32 << 20) // max(case.size, 1)))
    try:
        return str(steady_state(case.setup, case.op, n=n, env=_child_env()))
    except Exception as e:  # report, don't stop the run
        return f"n/a ({type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''})"


def run_case(case: Case, args: argparse.Namespace) -> None:
    label = f"{case.group} {case.name}"
    size = format_size(case.size)
    results: dict[str, tuple[Optional[float], str, Optional[str]]] = {}  # impl -> (s/op, error, key)
    for impl, fn in case.impls.items():
        try:
            key = _result_key(fn())
            seconds: Optional[float] = time_call(fn, args.min_time, args.repeats)
            results[impl] = (seconds, "", key)
        except Exception as e:
            results[impl] = (None, f"{type(e).__name__}: {e}", None)
    for impl, argv in case.external.items():
        if shutil.which(argv[0]) is None:
            results[impl] = (None, f"{argv[0]} not installed", None)
            continue
        try:
            seconds, stdout = time_process(argv, args.repeats, _child_env())
            results[impl + " (process)"] = (seconds, "", _external_key(stdout))
        except Exception as e:
            results[impl + " (process)"] = (None, f"{type(e).__name__}: {e}", None)

    ours = results.get("kcapi_hashlib", (None, "", None))
    ours_seconds, _, ours_key = ours
    syscalls = _syscalls(case, args.strace_n) if args.syscalls and ours_seconds is not None else ""
    for impl, (seconds, error, key) in results.items():
        if seconds is None:
            print(Row.line([label, size, impl, "-", "-", "-", "-", error]), flush=True)
            continue
        ops = 1.0 / seconds
        mib = case.size / seconds / (1 << 20)
        ratio = f"{ours_seconds / seconds:.2f}x" if ours_seconds else "-"
        check = "-" if key is None or ours_key is None else ("ok" if key == ours_key else "DIFFERS")
        extra = syscalls if impl == "kcapi_hashlib" else ""
        print(Row.line([label, size, impl, f"{ops:,.1f}", f"{mib:,.2f}", ratio, check, extra]), flush=True)
    if args.anchors:
        _print_anchors(case, label, size, ours_seconds, args)


def _print_anchors(case: Case, label: str, size: str, ours: Optional[float], args: argparse.Namespace) -> None:
    """The anchor rows (benchmarks/anchors.py) and the ratios kcapi_hashlib / anchor (1.00x = as fast)."""
    from benchmarks.anchors import anchors

    rows = anchors(case.group, case.name, case.size, args.tcrypt, args.min_time,
                   lambda fn: time_call(fn, args.min_time, args.repeats))  # fmt: skip
    ratios = []
    for a in rows:
        if a.seconds is None:
            print(Row.line([label, size, a.label, "-", "-", "-", "-", a.note]), flush=True)
            continue
        ops = 1.0 / a.seconds
        mib = case.size / a.seconds / (1 << 20)
        ratio = f"{ours / a.seconds:.2f}x" if ours else "-"
        print(Row.line([label, size, a.label, f"{ops:,.1f}", f"{mib:,.2f}", ratio, "-", a.note]), flush=True)
        if ours:
            ratios.append(f"{a.label.split(' (')[0] if 'tcrypt' in a.label else a.label} {a.seconds / ours:.2f}x")
    if ratios:
        print(f"#   {label} {size}: kcapi_hashlib / " + "; / ".join(ratios), flush=True)


def discover(names: Optional[list[str]]) -> list[str]:
    found = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            raise SystemExit(f"no benchmark module {', '.join(unknown)} (have: {', '.join(found)})")
        return [n for n in found if n in names]
    return found


def _split(values: Optional[list[str]]) -> list[str]:
    return [v for value in values or [] for v in value.split(",") if v]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Time kcapi_hashlib next to the stdlib and libkcapi, and count its syscalls per operation.",
    )
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, shorter timings")
    parser.add_argument("--group", action="append", help="only these groups (hash, hmac, cipher, ...)")
    parser.add_argument("--case", action="append", help="only cases whose name contains this text")
    parser.add_argument("--module", action="append", help="only these modules (e.g. bench_hash)")
    parser.add_argument("--sizes", help=f"comma-separated input sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--min-time", type=float, help="seconds per timed batch (default 0.3; quick 0.05)")
    parser.add_argument("--repeats", type=int, help="timed batches per implementation, best kept (default 5; quick 3)")
    parser.add_argument("--no-syscalls", dest="syscalls", action="store_false", help="don't count syscalls")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--no-anchors",
        dest="anchors",
        action="store_false",
        help="no in-kernel (tcrypt), libkcapi and raw-socket anchor rows (benchmarks/anchors.py)",
    )
    parser.add_argument("--tcrypt", choices=("none", "quick", "all"), default="quick",
                        help="which tcrypt speed tests to run for the in-kernel anchor (quick: sha256 only, "
                        "~22 s under UML; all: also sha1, sha512, gcm(aes): minutes)")  # fmt: skip
    parser.add_argument("--pbkdf2-iterations", type=int, help="c of the PBKDF2 floor table (benchmarks/pbkdf2.py; "
                        "default 10000, quick 1000); the table is printed with the kdf group")  # fmt: skip
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in (args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)).split(",")]
    args.min_time = args.min_time if args.min_time is not None else (0.05 if args.quick else 0.3)
    args.repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    args.strace_n = 50 if args.quick else 200
    groups = _split(args.group)
    texts = _split(args.case)

    from kcapi_hashlib import _afalg

    why = _afalg.af_alg_status()
    uml = "UML" in Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else False
    print(f"# kernel {platform.release()}{' (user-mode-linux)' if uml else ''}; Python {platform.python_version()} "
          f"({sys.executable}); AF_ALG: {'available' if why is None else why}")  # fmt: skip
    print(f"# sizes {', '.join(format_size(s) for s in sizes)}; best of {args.repeats} x >= {args.min_time:g} s; "
          "VS KCAPI = speed relative to kcapi_hashlib")  # fmt: skip
    if why is not None:
        print("# the kernel cannot serve AF_ALG here: run under the VM: python -m kcapi_hashlib vm -- "
              f"{sys.executable} benchmarks/run.py ...")  # fmt: skip
    print(Row.header(), flush=True)
    for name in discover(args.module):
        module = importlib.import_module(f"benchmarks.{name}")
        cases: list[Case] = module.cases(sizes)
        for case in cases:
            if groups and case.group not in groups:
                continue
            if texts and not any(t in case.name for t in texts):
                continue
            if args.list:
                print(Row.line([f"{case.group} {case.name}", format_size(case.size), ", ".join(case.impls)]))
                continue
            run_case(case, args)
    if not args.list and not args.module and (not groups or "kdf" in groups) and (not texts or "pbkdf2" in texts):
        from benchmarks import pbkdf2  # the PBKDF2 floor: iterations/s and syscalls/iteration per hash

        iterations = args.pbkdf2_iterations or (1000 if args.quick else 10000)
        pbkdf2.report(iterations, pbkdf2.HASHES, args.min_time, args.repeats, args.syscalls)
    if not args.list and not args.module and not groups and not texts:
        from benchmarks import instructions  # bytecode instructions per operation (deterministic), all cases

        instructions.report(instructions.collect(2, ours_only=False), syscalls=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
