"""SHA-384, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA384``.

>>> from kcapi_hashlib.Hash import SHA384
>>> h = SHA384.new()
>>> h.update(b'Hello')
>>> print(h.hexdigest())
"""

from __future__ import annotations

from typing import Optional

from ._base import Buffer, HashBase, oneshot


class SHA384Hash(HashBase):
    """A SHA-384 hash object.
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
    digest_size: int = 48
    # The internal block size of the hash algorithm in bytes.
    block_size: int = 128
    # ASN.1 Object ID
    oid: str = "2.16.840.1.101.3.4.2.2"

    def __init__(self, data: Optional[Buffer] = None) -> None:
        self._start("sha384", data)

    def new(self, data: Optional[Buffer] = None) -> SHA384Hash:
        """Create a fresh SHA-384 hash object."""

        return SHA384Hash(data)


def new(data: Optional[Buffer] = None) -> SHA384Hash:
    """Create a new hash object.

    :parameter data:
        Optional. The very first chunk of the message to hash.
        It is equivalent to an early call to :meth:`SHA384Hash.update`.
    :type data: byte string/byte array/memoryview

    :Return: A :class:`SHA384Hash` hash object
    """

    return SHA384Hash(data)


def digest(data: Buffer) -> bytes:
    """Compute the SHA-384 digest of a complete message, in one go.

    It returns the same bytes as ``new(data).digest()``.

    Args:
       data (bytes/bytearray/memoryview):
        The whole message to hash.

    :Return: the 48-byte digest
    :rtype: byte string
    """

    return oneshot("sha384", data)


# The size of the resulting hash in bytes.
digest_size: int = SHA384Hash.digest_size

# The internal block size of the hash algorithm in bytes.
block_size: int = SHA384Hash.block_size

__all__ = ["SHA384Hash", "new", "digest", "digest_size", "block_size"]
