"""Crypto.Random on the kernel's DRBG: get_random_bytes(n) and new().read(n), from AF_ALG "rng" "stdrng".

Reads are at most 128 bytes per kernel call (algif_rng), so get_random_bytes(n) costs ceil(n / 128) recv
calls on one op socket kept per process; a forked child opens its own (see kcapi_hashlib._afalg.rng).
If the kernel has no usable DRBG the policy decides: strict (the default) raises UnsupportedAlgorithm (a
ValueError) carrying the reason; fallback reads os.urandom instead, counted in fallback_counts() as "stdrng".

new(seed=...) (kcapi_hashlib's addition; PyCryptodome's new() takes and ignores any argument) returns a DRBG
instance of its own, seeded through ALG_SET_KEY (libkcapi's kcapi_rng_seed):

    rng = Random.new(seed=b"my personalization")           # the kernel's "stdrng", or drbg="drbg_nopr_hmac_sha256"
    rng.read(32)

The kernel takes the seed as the DRBG's personalization string (crypto/algif_rng.c rng_setkey ->
crypto_rng_reset -> crypto/drbg.c drbg_kcapi_seed -> drbg_instantiate) and still mixes in its own entropy, so the
output is NOT reproducible from the seed. It is only with entropy=... (ALG_SET_DRBG_ENTROPY, the CAVP test
interface: kernels built with CONFIG_CRYPTO_USER_API_RNG_CAVP, CAP_SYS_ADMIN, at most 128 bytes); Debian's kernels
(6.1, 6.12, 7.2; amd64 and user-mode-linux) are built without it and refuse it. Where no DRBG can be bound (no
algif_rng, af_alg_restrict, no AF_ALG) or the entropy is refused, new(seed=...) raises UnsupportedAlgorithm with
the kernel's reason under every policy: os.urandom cannot take a seed. get_random_bytes() is not affected.
"""

from __future__ import annotations

import operator
import os
import sys
from typing import Any, Optional, Union

from .. import _policy
from .._afalg import AlgUnavailable
from .._afalg import rng as _rng
from .._callable import as_builtin

__all__ = ["new", "get_random_bytes", "SeededDRBG"]
# install() puts these in place of Crypto.Random's.
_REPLACES = ["new", "get_random_bytes", "atfork"]


@as_builtin()
def get_random_bytes(n: int, /) -> bytes:
    """n random bytes from the kernel DRBG (os.urandom's checks: an int, not negative)."""
    try:
        size = operator.index(n)
    except TypeError:
        os.urandom(n)  # raises os.urandom's own TypeError for n, worded as this Python version words it
        raise
    if size < 0:
        os.urandom(size)  # raises os.urandom's own ValueError, as worded here (3.15: "size cannot be negative")
        raise ValueError("negative argument not allowed")
    if size > sys.maxsize:
        os.urandom(size)  # raises os.urandom's OverflowError for a size beyond Py_ssize_t, as worded there
        raise OverflowError("Python int too large to convert to C ssize_t")
    try:
        return _rng.read(size)
    except AlgUnavailable as e:
        _policy.unavailable("rng", _rng.NAME, e)
        return os.urandom(size)


class _KernelRNG:
    """A file-like source of random bytes (PyCryptodome's Random.new() object)."""

    def read(self, n: int) -> bytes:
        """Return a random byte string of the desired size."""
        return get_random_bytes(n)

    def flush(self) -> None:
        """Method provided for backward compatibility only."""

    def reinit(self) -> None:
        """Method provided for backward compatibility only."""

    def close(self) -> None:
        """Method provided for backward compatibility only."""


class SeededDRBG:
    """A kernel DRBG instance of its own, seeded when made (Random.new(seed=...); see the module docstring).

    read(n) returns n bytes from it (128 per recv). Threads may share one: each recv is one crypto_rng_get_bytes
    under the socket's lock (rng_recvmsg), so concurrent reads get distinct output. A forked child shares the
    parent's instance (the socket is inherited): their reads are distinct too. close() releases the sockets;
    a read after it raises ValueError."""

    def __init__(self, seed: bytes, entropy: Optional[bytes], drbg: str) -> None:
        #: The kernel algorithm name bound ("stdrng": the highest-priority DRBG)
        self.name = drbg
        try:
            self._pair: Optional[tuple[Any, Any]] = _rng.seeded(seed, entropy, drbg)
        except AlgUnavailable as e:
            _policy.no_fallback(
                "rng", drbg, e, "has no fallback for a seeded DRBG (os.urandom cannot take a seed or test entropy)"
            )

    def read(self, n: int) -> bytes:
        """Return n bytes from this DRBG."""
        size = operator.index(n)
        if size < 0:
            raise ValueError("negative argument not allowed")
        pair = self._pair
        if pair is None:
            raise ValueError("read from a closed DRBG")
        buf = bytearray(size)
        if size:
            _rng.read_from(pair[0], pair[1], memoryview(buf))
        return bytes(buf)

    def flush(self) -> None:
        """Method provided for compatibility with PyCryptodome's Random.new() object."""

    def reinit(self) -> None:
        """Method provided for compatibility with PyCryptodome's Random.new() object."""

    def close(self) -> None:
        """Close this DRBG's sockets (the kernel frees the instance)."""
        pair, self._pair = self._pair, None
        if pair is not None:
            pair[1].close()
            pair[0].close()

    def __enter__(self) -> SeededDRBG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bytes_arg(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, bytearray or memoryview, not {type(value).__name__}")
    return bytes(memoryview(value).cast("B")) if isinstance(value, memoryview) else bytes(value)


@as_builtin()
def new(
    *args: Any,
    seed: Optional[Any] = None,
    entropy: Optional[Any] = None,
    drbg: Optional[str] = None,
    **kwargs: Any,
) -> Union[_KernelRNG, SeededDRBG]:
    """Return a file-like object that outputs cryptographically random bytes.

    With seed= (bytes: the personalization string), entropy= (CAVP test entropy) or drbg= (a kernel DRBG
    name, default "stdrng"): a SeededDRBG, a kernel DRBG instance of its own seeded with them (see the module
    docstring for what the kernel does with each). Without them: PyCryptodome's object, reading the shared DRBG
    get_random_bytes() uses (any other argument is ignored, as there)."""
    if seed is None and entropy is None and drbg is None:
        return _KernelRNG()
    seed_b = b"" if seed is None else _bytes_arg(seed, "seed")
    entropy_b = None if entropy is None else _bytes_arg(entropy, "entropy")
    if drbg is not None and not isinstance(drbg, str):
        raise TypeError(f"drbg must be a str, not {type(drbg).__name__}")
    return SeededDRBG(seed_b, entropy_b, drbg or _rng.NAME)


@as_builtin()
def atfork() -> None:
    """PyCryptodome's no-op: a forked child gets its own kernel DRBG socket by itself."""
