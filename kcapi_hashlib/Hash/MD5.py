"""MD5, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.MD5``.

>>> from kcapi_hashlib.Hash import MD5
>>> h = MD5.new()
>>> h.update(b'Hello')
>>> print(h.hexdigest())
"""

from __future__ import annotations

from typing import Optional

from ._base import Buffer, HashBase


class MD5Hash(HashBase):
    """A MD5 hash object.
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
    digest_size: int = 16
    # The internal block size of the hash algorithm in bytes.
    block_size: int = 64
    # ASN.1 Object ID
    oid: str = "1.2.840.113549.2.5"

    def __init__(self, data: Optional[Buffer] = None) -> None:
        self._start("md5", data)

    def new(self, data: Optional[Buffer] = None) -> MD5Hash:
        """Create a fresh MD5 hash object."""

        return MD5Hash(data)


def new(data: Optional[Buffer] = None) -> MD5Hash:
    """Create a new hash object.

    :parameter data:
        Optional. The very first chunk of the message to hash.
        It is equivalent to an early call to :meth:`MD5Hash.update`.
    :type data: byte string/byte array/memoryview

    :Return: A :class:`MD5Hash` hash object
    """

    return MD5Hash(data)


# The size of the resulting hash in bytes.
digest_size: int = MD5Hash.digest_size

# The internal block size of the hash algorithm in bytes.
block_size: int = MD5Hash.block_size

__all__ = ["MD5Hash", "new", "digest_size", "block_size"]
