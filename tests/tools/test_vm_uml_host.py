"""The user-mode-linux runner on the host itself (UML cannot nest, so this file boots it and runs outside any
VM: tox runs it first, ``python -m pytest --noconftest tests/tools/test_vm_uml_host.py``; inside the suite's
VM it skips, saying so).

The XSAVE ptrace shim (dev/vm/kcapi_vm/xstate.py): outside UML, a traced child's state set with a buffer
shorter than this host's XSAVE area (refused with EFAULT by the host, as an AMX host refuses UML 6.1) goes
through the shim and lands, the rest of the state kept. Then, forced on whatever host this is: UML 6.1, 6.12 and 7.2
boot with it and their guests compute digests through AF_ALG (compared with known values) and float-heavy
Python in two threads and a child process (compared with the host's own result). With the shim refusing the
XSAVE state as an AMX host does, and with too little memory, the kernel dies before the command runs: the
runner names the signal, the console's telling line and what to do, and keeps the whole console in a file.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kcapi_vm import xstate
from kcapi_vm.uml import inside_uml, resolve_kernel

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(
        inside_uml(),
        reason="user-mode-linux cannot nest: this file boots UML itself and runs on the host (tox's first command)",
    ),
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="Debian's user-mode-linux kernels are amd64 builds"),
]

# Floats through libm, the FPU and SSE/AVX registers; two threads share one host process under UML, so
# their register state crosses every context switch the shim handles.
FLOATS = textwrap.dedent("""\
    import math, threading
    def work(seed, out):
        acc = 0.0
        for i in range(1, 60000):
            x = seed + i * 1e-3
            acc += math.sin(x) * math.sqrt(x) / (1.0 + math.log(x) ** 2) + math.fsum([x / 3.0, -x / 7.0])
        out.append(acc.hex())
    def floats():
        out = []
        threads = [threading.Thread(target=work, args=(s, out)) for s in (0.5, 1.5)]
        for t in threads: t.start()
        for t in threads: t.join()
        return sorted(out)
""")

GUEST = FLOATS + textwrap.dedent("""\
    import json, subprocess, sys, kcapi_hashlib
    code = "import math; print(sum(math.cos(i / 7) for i in range(99999)).hex())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    print(json.dumps({
        "floats": floats(), "child": child,
        "sha256": kcapi_hashlib.sha256(b"abc").hexdigest(),
        "sha3_256": kcapi_hashlib.sha3_256(b"").hexdigest(),
        "sha512_big": kcapi_hashlib.sha512(b"x" * 1000003).hexdigest(),
        "ops": kcapi_hashlib._afalg.kernel_operations(),
    }))
""")


def _vm(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kcapi_hashlib", "vm", "--force-vm", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _env(mode: str) -> dict[str, str]:
    return {**os.environ, xstate.MODE_ENV: mode}


def _host_values() -> dict[str, object]:
    import hashlib
    import math

    scope: dict[str, object] = {}
    exec(FLOATS, scope)
    return {
        "floats": scope["floats"](),  # type: ignore[operator]
        "child": sum(math.cos(i / 7) for i in range(99999)).hex(),
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha3_256": "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
        "sha512_big": hashlib.sha512(b"x" * 1000003).hexdigest(),
    }


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "7.2"])
def test_forced_shim_boots_and_computes_right(kernel: str) -> None:
    proc = _vm("--kernel", kernel, "--verbose", "--", sys.executable, "-c", GUEST, env=_env("force"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{xstate.MODE_ENV}=force: UML runs with the ptrace shim" in proc.stderr
    # The shim itself says, once, that it set a SETREGSET of UML's size as the host's full one.
    widened = re.findall(
        r"xstate shim: NT_X86_XSTATE SETREGSET of (\d+) bytes set as the host's (\d+) \(forced\)", proc.stderr
    )
    assert len(widened) >= 1, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got.pop("ops") > 0
    assert got == _host_values()


def test_auto_verdict_is_measured() -> None:
    # 7.2 sizes its XSAVE buffer at run time: never needed. 6.1 passes a fixed 2696 bytes: needed exactly where
    # the host's area is larger, i.e. with AMX (its tile data alone is 8 KiB).
    env = _env("auto")
    assert xstate.needed(resolve_kernel("7.2"), env) is False
    amx = "amx_tile" in Path("/proc/cpuinfo").read_text()
    assert xstate.needed(resolve_kernel("6.1"), env) is amx


def _diagnosis(proc: subprocess.CompletedProcess[str]) -> tuple[str, Path]:
    assert proc.returncode == 125, proc.stderr
    kept = re.search(r"the whole console: (\S+)", proc.stderr)
    assert kept, proc.stderr
    console = Path(kept.group(1))
    assert console.is_file()
    assert " -6 " not in proc.stderr and "[<" not in proc.stderr  # a signal by name, no stack dump
    return proc.stderr, console


def test_refused_xsave_state_is_explained() -> None:
    # What an AMX host does to UML 6.1 without the shim, made to happen here.
    err, console = _diagnosis(_vm("--", "true", env=_env("refuse")))
    try:
        assert "was killed by SIGABRT before the command ran" in err
        assert "console: userspace - ptrace set fp regs failed, errno = 14" in err
        assert "AMX" in err and "--kernel 7.2" in err and f"{xstate.MODE_ENV}=force" in err
        assert len(err.strip().splitlines()) <= 5
        assert "ptrace set fp regs failed" in console.read_text()
        assert "Kernel panic - not syncing" in console.read_text()
    finally:
        console.unlink()


def test_early_death_names_the_console_line() -> None:
    err, console = _diagnosis(_vm("--mem", "1M", "--", "true", env=_env("auto")))
    try:
        assert "exited with status 1 before the command ran" in err
        assert "console: Too few physical memory!" in err
        assert "--mem" in err
    finally:
        console.unlink()


PTRACE_TRACEME, PTRACE_GETREGSET, PTRACE_SETREGSET, NT_X86_XSTATE = 0, 0x4204, 0x4205, 0x202
# The legacy FXSAVE area (512 bytes) and the XSAVE header (64): shorter than any host's full XSAVE area with
# AVX, so this host refuses it as an AMX host refuses UML 6.1's 2696 bytes. xmm0 is at bytes 160..176.
SHORT = 576


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _regset(fn: Any, request: int, pid: int, buf: Any, size: int) -> tuple[int, int, int]:
    iov = _Iovec(ctypes.cast(buf, ctypes.c_void_p), size)
    ret = fn(request, pid, NT_X86_XSTATE, ctypes.byref(iov))
    return ret, ctypes.get_errno(), iov.len


def test_shim_widens_a_short_buffer_here() -> None:
    """The shim's own path on this host, outside UML: a stopped child's XSAVE state set with a buffer shorter
    than the host's (the host alone refuses it: EFAULT); through the shim the call succeeds, the short part is
    the child's new state and the rest (AVX and above) is what it was."""
    libc = ctypes.CDLL(None, use_errno=True)
    shim = ctypes.CDLL(str(xstate.build()), use_errno=True)
    for fn in (libc.ptrace, shim.ptrace):
        fn.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        fn.restype = ctypes.c_long
    pid = os.fork()
    if pid == 0:  # the tracee: stop, and exit when let go
        try:
            libc.ptrace(PTRACE_TRACEME, 0, None, None)
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            os._exit(0)
    try:
        _, status = os.waitpid(pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        before = ctypes.create_string_buffer(65536)
        ret, err, full = _regset(libc.ptrace, PTRACE_GETREGSET, pid, before, 65536)
        assert ret == 0, os.strerror(err)
        assert full > SHORT
        mine = ctypes.create_string_buffer(before.raw[:SHORT])
        mine[160:176] = b"\x5a" * 16  # xmm0
        ret, err, _ = _regset(libc.ptrace, PTRACE_SETREGSET, pid, mine, SHORT)
        assert (ret, err) == (-1, errno.EFAULT)  # the host's refusal, as UML 6.1 meets it with AMX
        ret, err, _ = _regset(shim.ptrace, PTRACE_SETREGSET, pid, mine, SHORT)
        assert ret == 0, os.strerror(err)
        after = ctypes.create_string_buffer(65536)
        assert _regset(libc.ptrace, PTRACE_GETREGSET, pid, after, 65536)[::2] == (0, full)
        assert after.raw[160:176] == b"\x5a" * 16
        assert after.raw[SHORT:full] == before.raw[SHORT:full]
        assert after.raw[:160] == before.raw[:160]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
