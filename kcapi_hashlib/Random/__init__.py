"""Crypto.Random on the kernel's DRBG: get_random_bytes(n) and new().read(n), from AF_ALG "rng" "stdrng".

Reads are at most 128 bytes per kernel call (algif_rng), so get_random_bytes(n) costs ceil(n / 128) recv
calls on one op socket kept per process; a forked child opens its own (see kcapi_hashlib._afalg.rng).
If the kernel has no usable DRBG the policy decides: strict (the default) raises UnsupportedAlgorithm (a
ValueError) carrying the reason; fallback reads os.urandom instead, counted in fallback_counts() as "stdrng".
"""

from __future__ import annotations

import operator
import os
import sys
from typing import Any

from .. import _policy
from .._afalg import AlgUnavailable
from .._afalg import rng as _rng
from .._callable import as_builtin

__all__ = ["new", "get_random_bytes"]
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


@as_builtin()
def new(*args: Any, **kwargs: Any) -> _KernelRNG:
    """Return a file-like object that outputs cryptographically random bytes."""
    return _KernelRNG()


@as_builtin()
def atfork() -> None:
    """PyCryptodome's no-op: a forked child gets its own kernel DRBG socket by itself."""
