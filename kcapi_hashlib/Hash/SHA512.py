"""SHA-512 (and SHA-512/224, SHA-512/256), computed by the kernel: a drop-in for PyCryptodome's
``Crypto.Hash.SHA512``.

The kernel has no SHA-512/224 or SHA-512/256 (no "sha512-224" shash): those truncations follow
kcapi_hashlib's policy (strict raises ValueError('unsupported hash type sha512_224'), fallback uses hashlib).
"""

from __future__ import annotations

from typing import Optional

from .._algorithms import ROWS, Algorithm
from .._callable import as_builtin
from ._base import Buffer, PlainHash, oneshot

# truncate= -> the hash (SHA-512 itself for None), from kcapi_hashlib._algorithms.
_TRUNCATIONS: dict[Optional[str], Algorithm] = {row.truncate or None: row for row in ROWS if row.module == "SHA512"}


def _truncation(truncate: Optional[str]) -> Algorithm:
    # Compared as PyCryptodome compares it (==, never hashed: an unhashable or writable-memoryview value is
    # just an incorrect length).
    if truncate is None:
        return _TRUNCATIONS[None]
    for key in ("224", "256"):
        if truncate == key:
            return _TRUNCATIONS[key]
    raise ValueError("Incorrect truncation length. It must be '224' or '256'.")


class SHA512Hash(PlainHash):
    """A SHA-512 hash object (possibly in its truncated version SHA-512/224 or SHA-512/256): attributes
    digest_size, block_size, oid. Do not instantiate directly: use :func:`new`."""

    # The internal block size of the hash algorithm in bytes (the same for the truncations).
    block_size: int = _TRUNCATIONS[None].block_size

    def __init__(self, data: Optional[Buffer], truncate: Optional[str]) -> None:
        self._truncate = truncate
        alg = _truncation(truncate)
        self.oid, self.digest_size = alg.oid, alg.digest_size
        self._start(alg.name, data)

    def new(self, data: Optional[Buffer] = None) -> SHA512Hash:
        """Create a fresh SHA-512 hash object."""

        return SHA512Hash(data, self._truncate)


@as_builtin()
def new(data: Optional[Buffer] = None, truncate: Optional[str] = None) -> SHA512Hash:
    """Create a new hash object.

    Args:
      data (bytes/bytearray/memoryview):
        Optional. The very first chunk of the message to hash.
        It is equivalent to an early call to :meth:`SHA512Hash.update`.
      truncate (string):
        Optional. The desired length of the digest. It can be either "224" or
        "256". If not present, the digest is 512 bits long.
        Passing this parameter is **not** equivalent to simply truncating
        the output digest.

    :Return: A :class:`SHA512Hash` hash object
    """

    return SHA512Hash(data, truncate)


@as_builtin()
def digest(data: Buffer, *, truncate: Optional[str] = None) -> bytes:
    """Compute the SHA-512 digest of a complete message, in one go.

    It returns the same bytes as ``new(data, truncate).digest()``.

    Args:
      data (bytes/bytearray/memoryview):
        The whole message to hash.
      truncate (string):
        Optional, keyword-only. The desired length of the digest:
        "224" (SHA-512/224) or "256" (SHA-512/256).
        If not present, the digest is 512 bits long.

    :Return: the digest (64, 28 or 32 bytes)
    :rtype: byte string
    """

    return oneshot(_truncation(truncate).name, data)


# The size of the full SHA-512 hash in bytes.
digest_size: int = _TRUNCATIONS[None].digest_size

# The internal block size of the hash algorithm in bytes.
block_size: int = SHA512Hash.block_size

__all__ = ["SHA512Hash", "new", "digest", "digest_size", "block_size"]
