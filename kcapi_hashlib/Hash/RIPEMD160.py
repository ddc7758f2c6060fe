"""RIPEMD-160, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.RIPEMD160``.

>>> from kcapi_hashlib.Hash import RIPEMD160
>>> h = RIPEMD160.new()
>>> h.update(b'Hello')
>>> print(h.hexdigest())
"""

from __future__ import annotations

from typing import Optional

from ._base import Buffer, HashBase


class RIPEMD160Hash(HashBase):
    """A RIPEMD-160 hash object.
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
    digest_size: int = 20
    # The internal block size of the hash algorithm in bytes.
    block_size: int = 64
    # ASN.1 Object ID
    oid: str = "1.3.36.3.2.1"

    def __init__(self, data: Optional[Buffer] = None) -> None:
        self._start("ripemd160", data)

    def new(self, data: Optional[Buffer] = None) -> RIPEMD160Hash:
        """Create a fresh RIPEMD-160 hash object."""

        return RIPEMD160Hash(data)


def new(data: Optional[Buffer] = None) -> RIPEMD160Hash:
    """Create a new hash object.

    :parameter data:
        Optional. The very first chunk of the message to hash.
        It is equivalent to an early call to :meth:`RIPEMD160Hash.update`.
    :type data: byte string/byte array/memoryview

    :Return: A :class:`RIPEMD160Hash` hash object
    """

    return RIPEMD160Hash(data)


# The size of the resulting hash in bytes.
digest_size: int = RIPEMD160Hash.digest_size

# The internal block size of the hash algorithm in bytes.
block_size: int = RIPEMD160Hash.block_size

__all__ = ["RIPEMD160Hash", "new", "digest_size", "block_size"]
