"""SHA-224, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA224``.

>>> from kcapi_hashlib.Hash import SHA224
>>> h = SHA224.new()
>>> h.update(b'Hello')
>>> print(h.hexdigest())
"""

from __future__ import annotations

from typing import Optional

from ._base import Buffer, HashBase, oneshot


class SHA224Hash(HashBase):
    """A SHA-224 hash object.
    Do not instantiate directly. Use the :func:`new` function.

    :ivar oid: ASN.1 Object ID
    :vartype oid: string

    :ivar block_size: the size in bytes of the internal message block,
                      input to the compression function
    :vartype block_size: integer

    :ivar digest_size: the size in bytes of the resulting hash
    :vartype digest_size: integer
    """

    # The size of the resulting hash in bytes.
    digest_size: int = 28
    # The internal block size of the hash algorithm in bytes.
    block_size: int = 64
    # ASN.1 Object ID
    oid: str = "2.16.840.1.101.3.4.2.4"

    def __init__(self, data: Optional[Buffer] = None) -> None:
        self._start("sha224", data)

    def new(self, data: Optional[Buffer] = None) -> SHA224Hash:
        """Create a fresh SHA-224 hash object."""

        return SHA224Hash(data)


def new(data: Optional[Buffer] = None) -> SHA224Hash:
    """Create a new hash object.

    :parameter data:
        Optional. The very first chunk of the message to hash.
        It is equivalent to an early call to :meth:`SHA224Hash.update`.
    :type data: byte string/byte array/memoryview

    :Return: A :class:`SHA224Hash` hash object
    """

    return SHA224Hash(data)


def digest(data: Buffer) -> bytes:
    """Compute the SHA-224 digest of a complete message, in one go.

    It returns the same bytes as ``new(data).digest()``.

    Args:
       data (bytes/bytearray/memoryview):
        The whole message to hash.

    :Return: the 28-byte digest
    :rtype: byte string
    """

    return oneshot("sha224", data)


# The size of the resulting hash in bytes.
digest_size: int = SHA224Hash.digest_size

# The internal block size of the hash algorithm in bytes.
block_size: int = SHA224Hash.block_size

__all__ = ["SHA224Hash", "new", "digest", "digest_size", "block_size"]
