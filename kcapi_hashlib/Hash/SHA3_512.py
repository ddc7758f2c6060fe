"""SHA3-512, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA3_512``."""

from __future__ import annotations

from typing import Optional

from ._base import Buffer, SHA3Base, oneshot


class SHA3_512_Hash(SHA3Base):
    """A SHA3-512 hash object.
    Do not instantiate directly.
    Use the :func:`new` function.

    :ivar oid: ASN.1 Object ID
    :vartype oid: string

    :ivar digest_size: the size in bytes of the resulting hash
    :vartype digest_size: integer
    """

    # The size of the resulting hash in bytes.
    digest_size: int = 64

    # ASN.1 Object ID
    oid: str = "2.16.840.1.101.3.4.2.10"

    # Input block size for HMAC
    block_size: int = 72

    def __init__(self, data: Optional[Buffer], update_after_digest: bool) -> None:
        self._start3("sha3_512", data, update_after_digest)

    def update(self, data: Buffer) -> SHA3_512_Hash:
        """Continue hashing of a message by consuming the next chunk of data.

        Args:
            data (byte string/byte array/memoryview): The next chunk of the message being hashed.
        """
        return super().update(data)  # type: ignore[no-any-return]

    def new(self, data: Optional[Buffer] = None) -> SHA3_512_Hash:
        """Create a fresh SHA3-512 hash object."""

        return type(self)(data, self._update_after_digest)


def new(data: Optional[Buffer] = None, *, update_after_digest: bool = False) -> SHA3_512_Hash:
    """Create a new hash object.

    Args:
        data (byte string/byte array/memoryview):
            The very first chunk of the message to hash.
            It is equivalent to an early call to :meth:`update`.
        update_after_digest (boolean):
            Whether :meth:`digest` can be followed by another :meth:`update`
            (default: ``False``).

    :Return: A :class:`SHA3_512_Hash` hash object
    """

    return SHA3_512_Hash(data, update_after_digest)


def digest(data: Buffer) -> bytes:
    """Compute the SHA3-512 digest of a complete message, in one go.

    It returns the same bytes as ``new(data).digest()``.

    Args:
        data (byte string/byte array/memoryview):
            The whole message to hash.

    :Return: the 64-byte digest
    :rtype: byte string
    """

    return oneshot("sha3_512", data)


# The size of the resulting hash in bytes.
digest_size: int = SHA3_512_Hash.digest_size

# Input block size for HMAC
block_size: int = 72

__all__ = ["SHA3_512_Hash", "new", "digest", "digest_size", "block_size"]
