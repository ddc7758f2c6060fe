"""What the builtin-like wrapper (kcapi_hashlib._callable.builtin) costs per call, and what accounting costs.

    python benchmarks/callable_overhead.py            # works without AF_ALG: the constructors make no syscall
    python -m kcapi_hashlib vm -- python benchmarks/callable_overhead.py

Times `kcapi_hashlib.sha256()` (no data: no syscall, so the Python work is all there is to time) through the
wrapper and through the function it wraps, and a stdlib function call for scale; best of 7 runs. Where AF_ALG
works it also times `sha256(b'abc').digest()` (two syscalls) with the accounting counters as they are.
Prints figures; never asserts (syscall counts are asserted in tests/parity/test_builtin_like.py).
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import kcapi_hashlib  # noqa: E402
from kcapi_hashlib import _afalg  # noqa: E402


def best_ns(stmt: object, number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=7)) / number * 1e9  # type: ignore[call-overload]


def main() -> int:
    wrapped = kcapi_hashlib.sha256
    bare = wrapped.__wrapped__  # type: ignore[attr-defined]
    n = 20000
    if _afalg.af_alg_status() is not None:
        print("no AF_ALG here: the constructors below fall back (policy fallback) and are timed so")
        kcapi_hashlib.set_policy("fallback")
        import warnings

        warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
    from kcapi_hashlib._callable import builtin

    def nothing(data: bytes = b"") -> None:
        return None

    cheap = builtin(nothing)
    print(f"python {sys.version.split()[0]}")
    # The wrapper alone, around a function that does nothing: what every call pays for not binding.
    wn, bn = best_ns(cheap, 200000), best_ns(nothing, 200000)
    print(f"do-nothing function: wrapped {wn:6.0f} ns, bare {bn:6.0f} ns, overhead {wn - bn:6.0f} ns/call")
    w = best_ns(wrapped, n)
    b = best_ns(bare, n)
    print(f"sha256() through the builtin wrapper : {w:8.0f} ns/call")
    print(f"sha256() through the bare function   : {b:8.0f} ns/call")

    class Holder:  # the Django pattern: the constructor stored on a class, called through an instance
        digest = wrapped

    h = Holder()
    print(f"instance.digest() (class attribute)  : {best_ns(h.digest, n):8.0f} ns/call")
    # Accounting: what core.count() adds to each AF_ALG syscall, against the bare stats increment it replaced.
    from kcapi_hashlib._afalg import accounting, core

    class FakeTfm:  # only the counter core.count() touches: no socket
        __slots__ = ("_acct",)

    t = FakeTfm()
    t._acct = accounting.counter("hash", "benchmark")
    stats = core._stats
    counted = min(timeit.repeat(lambda: core.count(t, "send", 100), number=n * 10, repeat=7)) / (n * 10) * 1e9  # type: ignore[arg-type]

    def bare() -> None:
        stats["send"] += 1

    plain = min(timeit.repeat(bare, number=n * 10, repeat=7)) / (n * 10) * 1e9
    print(f"core.count() per AF_ALG syscall      : {counted:8.0f} ns (the bare stats increment: {plain:.0f} ns)")
    if _afalg.af_alg_status() is None:
        op = best_ns(lambda: wrapped(b"abc").digest(), 2000)
        print(f"sha256(b'abc').digest() (2 syscalls) : {op:8.0f} ns/op, accounting on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
