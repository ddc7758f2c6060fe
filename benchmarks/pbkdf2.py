"""PBKDF2's floor: iterations/s and syscalls/iteration, per hash, on the running kernel.

    python benchmarks/pbkdf2.py [--quick] [--iterations N] [--hashes sha1,sha256,sha512] [--no-syscalls]
    python -m kcapi_hashlib vm [--kernel 7.2] -- python benchmarks/pbkdf2.py     # on a host without AF_ALG

benchmarks/run.py calls report() for the kdf group (so `tox -e bench-quick` prints it). Rows per hash:

- kcapi_hashlib.pbkdf2_hmac as it runs here: U2..Uc as linked io_uring requests (one io_uring_enter per
  batch of kcapi_hashlib._afalg.uring.BATCH iterations) where io_uring works, else send/recv;
- kcapi_hashlib.pbkdf2_hmac with send/recv only (the path without io_uring: 2 syscalls per iteration);
- raw send+recv loop: one keyed hmac op socket, os.write + os.read per iteration and the XOR in Python, set up
  outside the timing: the floor with send/recv (one round trip per iteration, U_j depends on U_(j-1));
- hashlib.pbkdf2_hmac: CPython's (OpenSSL, userspace; no syscalls).

ITER/S = iterations per second of one derivation (c iterations, a digest-sized key); US/ITER is also the
seconds a 1,000,000-iteration derivation (Django's default hasher) takes at that speed; SYSCALLS/ITER = every syscall of
the process per iteration, by strace (tests.support.syscalls.steady_state; the raw loop and hashlib are
counted the same way). Benchmarks print; they never assert.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = b"password"
SALT = b"NaCl-salt-16byte"
HASHES = ("sha1", "sha256", "sha512")
COLUMNS = (("HASH", 7), ("ITER", 7), ("IMPLEMENTATION", 39), ("ITER/S", 11), ("US/ITER", 9), ("VS KCAPI", 9),
           ("CHECK", 6), ("SYSCALLS/ITER", 0))  # fmt: skip


def line(cells: list[str]) -> str:
    parts = []
    for (name, width), cell in zip(COLUMNS, cells):
        right = name in ("ITER/S", "US/ITER", "VS KCAPI")
        parts.append(cell.rjust(width) if right else cell.ljust(width))
    return "  ".join(parts).rstrip()


def raw_loop(name: str, iterations: int) -> Callable[[], bytes]:
    """PBKDF2 (one block) on one keyed hmac(<name>) op socket: os.write + os.read per PRF call."""
    tfm = socket.socket(38, socket.SOCK_SEQPACKET, 0)  # AF_ALG
    tfm.bind(("hash", f"hmac({name})"))
    tfm.setsockopt(279, 1, PASSWORD)  # SOL_ALG, ALG_SET_KEY
    op, _ = tfm.accept()
    fd = op.fileno()
    size = hashlib.new(name).digest_size
    first = SALT + (1).to_bytes(4, "big")
    write, read = os.write, os.read

    def derive() -> bytes:
        write(fd, first)
        u = read(fd, size)
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            write(fd, u)
            u = read(fd, size)
            acc ^= int.from_bytes(u, "big")
        return acc.to_bytes(size, "big")

    derive._keep = (tfm, op)  # type: ignore[attr-defined]
    return derive


_RAW_SETUP = """\
import sys
sys.path.insert(0, {root!r})
from benchmarks.pbkdf2 import raw_loop
derive = raw_loop({name!r}, {c})
"""


def _without_uring(fn: Callable[[], bytes]) -> Callable[[], bytes]:
    from kcapi_hashlib import _kdf

    def call() -> bytes:
        saved = _kdf.URING_MIN_ITERATIONS
        _kdf.URING_MIN_ITERATIONS = 1 << 62
        try:
            return fn()
        finally:
            _kdf.URING_MIN_ITERATIONS = saved

    return call


def _syscalls(setup: str, op: str, c: int) -> str:
    from benchmarks.run import _child_env
    from tests.support.syscalls import steady_state

    if shutil.which("strace") is None:
        return "n/a (strace not installed)"
    try:
        count = steady_state(setup, op, n=2, env=_child_env())
    except Exception as e:  # report, don't stop the run
        return f"n/a ({type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''})"
    top = sorted(count.by_syscall.items(), key=lambda kv: -kv[1])
    detail = ", ".join(f"{k} {v / c:.3g}" for k, v in top[:3] if v)
    return f"{count.per_op / c:.4g} ({detail or 'none'})"


def report(iterations: int, hashes: tuple[str, ...], min_time: float, repeats: int, syscalls: bool) -> None:
    from benchmarks.run import time_call
    from kcapi_hashlib import _kdf, pbkdf2_hmac
    from kcapi_hashlib._afalg import uring

    c = iterations
    kdf = "from kcapi_hashlib import pbkdf2_hmac"
    print(f"# PBKDF2 floor: c={c}, password {len(PASSWORD)} B, salt {len(SALT)} B, dklen = digest size; "
          f"io_uring batches of {uring.BATCH} iterations from c >= {_kdf.URING_MIN_ITERATIONS}")  # fmt: skip
    print(line([name for name, _ in COLUMNS]), flush=True)
    for name in hashes:
        impls: list[tuple[str, Optional[Callable[[], bytes]], str, str, str]] = []
        ours = lambda n=name: pbkdf2_hmac(n, PASSWORD, SALT, c)  # noqa: E731
        ours()  # makes this thread's ring (or finds io_uring off): the label says which path runs
        why = uring.unavailable()
        label = "kcapi_hashlib (send/recv: no io_uring)" if why else "kcapi_hashlib (io_uring chain)"
        impls.append((label, ours, kdf, f"pbkdf2_hmac({name!r}, {PASSWORD!r}, {SALT!r}, {c})", why or ""))
        if not why:
            off = (
                f"{kdf}\nfrom kcapi_hashlib import _kdf\n_kdf.URING_MIN_ITERATIONS = 1 << 62",
                f"pbkdf2_hmac({name!r}, {PASSWORD!r}, {SALT!r}, {c})",
            )
            impls.append(("kcapi_hashlib (send/recv)", _without_uring(ours), off[0], off[1], ""))
        try:
            raw: Optional[Callable[[], bytes]] = raw_loop(name, c)
            raw_note = ""
        except OSError as e:
            raw, raw_note = None, f"n/a: {e}"
        impls.append(("raw send+recv loop (floor w/o io_uring)", raw,
                      _RAW_SETUP.format(root=str(ROOT), name=name, c=c), "derive()", raw_note))  # fmt: skip
        impls.append(("hashlib.pbkdf2_hmac (OpenSSL)", lambda n=name: hashlib.pbkdf2_hmac(n, PASSWORD, SALT, c),
                      "import hashlib", f"hashlib.pbkdf2_hmac({name!r}, {PASSWORD!r}, {SALT!r}, {c})", ""))  # fmt: skip
        expected = hashlib.pbkdf2_hmac(name, PASSWORD, SALT, c).hex()
        ours_s: Optional[float] = None
        for label, fn, setup, op, note in impls:
            if fn is None:
                print(line([name, str(c), label, "-", "-", "-", "-", note]), flush=True)
                continue
            try:
                check = "ok" if fn().hex() == expected else "DIFFERS"
                seconds = time_call(fn, min_time, repeats)
            except Exception as e:
                print(line([name, str(c), label, "-", "-", "-", "-", f"{type(e).__name__}: {e}"]), flush=True)
                continue
            if ours_s is None:
                ours_s = seconds
            per_iter = seconds / c
            counted = _syscalls(setup, op, c) if syscalls else ""
            if note:
                counted = f"{counted} [{note}]".strip()
            print(line([name, str(c), label, f"{1 / per_iter:,.0f}", f"{per_iter * 1e6:.2f}",
                        f"{ours_s / seconds:.2f}x", check, counted]), flush=True)  # fmt: skip


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/pbkdf2.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="c=1000, shorter timings")
    parser.add_argument("--iterations", type=int, help="iterations per derivation (default 10000; quick 1000)")
    parser.add_argument("--hashes", default=",".join(HASHES), help="comma-separated (default sha1,sha256,sha512)")
    parser.add_argument("--no-syscalls", dest="syscalls", action="store_false", help="don't count syscalls")
    args = parser.parse_args(argv)
    import platform

    print(f"# kernel {platform.release()}; Python {platform.python_version()}")
    c = args.iterations or (1000 if args.quick else 10000)
    report(c, tuple(h for h in args.hashes.split(",") if h), 0.05 if args.quick else 0.3, 3 if args.quick else 5,
           args.syscalls)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
