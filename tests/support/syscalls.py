"""Counting syscalls with `strace -f -c`: the one deterministic performance measure tests may assert.

steady_state(setup, op) runs a fresh interpreter twice under strace, doing `op` once (after `setup`) and
then n+1 times, and returns (count(n+1) - count(1)) / n for every syscall of the process, with the
per-syscall breakdown for messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass

_SCRIPT = """\
import sys
{setup}
def _op():
{op}
_op()
for _ in range(int(sys.argv[1])):
    _op()
"""


# Calls a normal kernel answers in the vDSO, without entering the kernel; user-mode-linux has no vDSO, so there
# they are real syscalls. threading.Lock.acquire() reads the monotonic clock on CPython 3.11+ (the deadline of
# sem_clockwait is computed even for an uncontended acquire): every object lock costs one clock_gettime in the
# VM and nothing on a normal kernel. Budgets count everything else; by_syscall still shows them.
VDSO = frozenset({"clock_gettime", "clock_gettime64", "gettimeofday", "time", "getcpu"})


@dataclass
class Count:
    per_op: float
    by_syscall: dict[str, float]

    def __str__(self) -> str:
        top = sorted(self.by_syscall.items(), key=lambda kv: -kv[1])
        detail = ", ".join(f"{name} {n:g}" for name, n in top if n)
        return f"{self.per_op:g} syscalls/op ({detail or 'none'})"


def _strace_counts(script: str, n: int, env: dict[str, str]) -> dict[str, int]:
    strace = shutil.which("strace")
    if strace is None:
        raise RuntimeError("strace is not installed (apt-get install strace); syscall budgets cannot be checked")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "op.py")
        out = os.path.join(tmp, "strace.txt")
        with open(path, "w") as f:
            f.write(script)
        proc = subprocess.run(
            [strace, "-f", "-c", "-o", out, sys.executable, path, str(n)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise AssertionError(f"measured script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        counts: dict[str, int] = {}
        with open(out) as f:
            for line in f:
                tokens = line.split()
                # rows: % time, seconds, usecs/call, calls, [errors], syscall
                if len(tokens) >= 5 and tokens[0][0].isdigit() and tokens[-1] != "total":
                    counts[tokens[-1]] = int(tokens[3])
        return counts


def steady_state(setup: str, op: str, n: int = 200, env: dict[str, str] | None = None) -> Count:
    script = _SCRIPT.format(setup=textwrap.dedent(setup), op=textwrap.indent(textwrap.dedent(op), "    "))
    environ = dict(os.environ if env is None else env)
    environ.setdefault("PYTHONHASHSEED", "0")
    environ["PYTHONDONTWRITEBYTECODE"] = "1"  # both runs then read the same files: no .pyc writes in one
    one = _strace_counts(script, 0, environ)
    many = _strace_counts(script, n, environ)
    names = set(one) | set(many)
    by = {name: (many.get(name, 0) - one.get(name, 0)) / n for name in names}
    return Count(per_op=sum(v for name, v in by.items() if name not in VDSO), by_syscall=by)
