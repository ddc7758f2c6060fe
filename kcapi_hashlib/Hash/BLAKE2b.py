"""BLAKE2b, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.BLAKE2b``.

The kernel has blake2b-160/256/384/512 (crypto/blake2b_generic.c), keyed through setkey (1 to 64 bytes):
those digest sizes run in the kernel, keyed ones on a tfm from the shared keyed-tfm cache (see
kcapi_hashlib.hmac.clear_key_cache). Other digest sizes follow kcapi_hashlib's policy.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from .. import _afalg, _hashes
from .. import keyring as _keyring
from .._afalg import keyed as _keyed
from .._algorithms import BY_NAME
from .._callable import as_builtin
from ..hmac import compare_digest
from ..keyring import KernelKey
from ._base import Buffer, HashBase, check_data, unhexlify_tag

_KERNEL_SIZES = BY_NAME["blake2b"].kernel_sizes


def _start(digest_bytes: int, key: Any) -> Any:
    if isinstance(key, KernelKey):
        # A kernel keyring key: the kernel's blake2b-<bits> or nothing (no key bytes to hash with in userspace).
        if digest_bytes not in _KERNEL_SIZES:
            sizes = ", ".join(str(n) for n in _KERNEL_SIZES)
            _keyring.unsupported(
                "hash", "blake2b", key, f"the kernel's blake2b has digest sizes {sizes} only, not {digest_bytes}"
            )
        tfm = _keyring.kernel_tfm(key, "hash", f"blake2b-{digest_bytes * 8}", "hash", "blake2b")
        return _hashes.HASH._create("blake2b", digest_bytes, BY_NAME["blake2b"].block_size, tfm)
    if key and digest_bytes in _KERNEL_SIZES:
        kname = f"blake2b-{digest_bytes * 8}"
        try:
            tfm = _keyed.cached_tfm("hash", kname, key)
        except _afalg.AlgUnavailable:
            pass  # the policy decides below
        else:
            return _hashes.HASH._create("blake2b", digest_bytes, BY_NAME["blake2b"].block_size, tfm)
    return _hashes.blake2b(digest_size=digest_bytes, key=key)


class BLAKE2b_Hash(HashBase):
    """A BLAKE2b hash object.
    Do not instantiate directly. Use the :func:`new` function.

    :ivar oid: ASN.1 Object ID
    :vartype oid: string

    :ivar block_size: the size in bytes of the internal message block,
                      input to the compression function
    :vartype block_size: integer

    :ivar digest_size: the size in bytes of the resulting hash
    :vartype digest_size: integer
    """

    # The internal block size of the hash algorithm in bytes (PyCryptodome's value).
    block_size: int = 64

    def __init__(
        self, data: Optional[Buffer], key: Union[Buffer, KernelKey], digest_bytes: int, update_after_digest: bool
    ) -> None:
        # The size of the resulting hash in bytes.
        self.digest_size = digest_bytes

        self._update_after_digest = update_after_digest
        self._digest_done = False

        # See https://tools.ietf.org/html/rfc7693
        if digest_bytes in (20, 32, 48, 64) and not key:
            self.oid = "1.3.6.1.4.1.1722.12.2.1." + str(digest_bytes // 4)

        if not isinstance(key, KernelKey):
            check_data(key)
        self._h = _start(digest_bytes, key)
        if data:
            self.update(data)

    def update(self, data: Buffer) -> BLAKE2b_Hash:
        """Continue hashing of a message by consuming the next chunk of data.

        Args:
            data (bytes/bytearray/memoryview): The next chunk of the message being hashed.
        """

        if self._digest_done and not self._update_after_digest:
            raise TypeError("You can only call 'digest' or 'hexdigest' on this object")
        check_data(data)
        self._h.update(data)
        return self

    def digest(self) -> bytes:
        """Return the **binary** (non-printable) digest of the message that has been hashed so far.

        :return: The hash digest, computed over the data processed so far.
                 Binary form.
        :rtype: byte string
        """

        out: bytes = self._h.digest()
        self._digest_done = True
        return out

    def verify(self, mac_tag: Buffer) -> None:
        """Verify that a given **binary** MAC (computed by another party)
        is valid.

        Args:
          mac_tag (bytes/bytearray/memoryview): the expected MAC of the message.

        Raises:
            ValueError: if the MAC does not match. It means that the message
                has been tampered with or that the MAC key is incorrect.
        """

        # As PyCryptodome, which hashes new(data=mac_tag): a falsy tag is no data (so it never matches), others
        # must be bytes, bytearray or a C-contiguous memoryview; compared as bytes.
        tag = b""
        if mac_tag:
            check_data(mac_tag)
            tag = _hashes.byte_view(mac_tag).tobytes()
        if not compare_digest(tag, self.digest()):
            raise ValueError("MAC check failed")

    def hexverify(self, hex_mac_tag: str) -> None:
        """Verify that a given **printable** MAC (computed by another party)
        is valid.

        Args:
            hex_mac_tag (string): the expected MAC of the message, as a hexadecimal string.

        Raises:
            ValueError: if the MAC does not match. It means that the message
                has been tampered with or that the MAC key is incorrect.
        """

        self.verify(unhexlify_tag(hex_mac_tag))

    def new(
        self,
        *,
        data: Optional[Buffer] = None,
        digest_bytes: Optional[int] = None,
        digest_bits: Optional[int] = None,
        key: Union[Buffer, KernelKey] = b"",
        update_after_digest: bool = False,
    ) -> BLAKE2b_Hash:
        """Return a new instance of a BLAKE2b hash object.
        See :func:`new`.
        """

        if digest_bytes is None and digest_bits is None:
            digest_bytes = self.digest_size
        return new(
            data=data,
            digest_bytes=digest_bytes,
            digest_bits=digest_bits,
            key=key,
            update_after_digest=update_after_digest,
        )


@as_builtin()
def new(
    *,
    data: Optional[Buffer] = None,
    digest_bytes: Optional[int] = None,
    digest_bits: Optional[int] = None,
    key: Union[Buffer, KernelKey] = b"",
    update_after_digest: bool = False,
) -> BLAKE2b_Hash:
    """Create a new hash object.

    Args:
        data (bytes/bytearray/memoryview):
            Optional. The very first chunk of the message to hash.
            It is equivalent to an early call to :meth:`BLAKE2b_Hash.update`.
        digest_bytes (integer):
            Optional. The size of the digest, in bytes (1 to 64). Default is 64.
        digest_bits (integer):
            Optional and alternative to ``digest_bytes``.
            The size of the digest, in bits (8 to 512, in steps of 8).
            Default is 512.
        key (bytes/bytearray/memoryview/kcapi_hashlib.keyring.KernelKey):
            Optional. The key to use to compute the MAC (1 to 64 bytes; a KernelKey: at digest sizes 20, 32,
            48 and 64 only, computed by the kernel).
            If not specified, no key will be used.
        update_after_digest (boolean):
            Optional. By default, a hash object cannot be updated anymore after
            the digest is computed. When this flag is ``True``, such check
            is no longer enforced.

    Returns:
        A :class:`BLAKE2b_Hash` hash object
    """

    if None not in (digest_bytes, digest_bits):
        raise TypeError("Only one digest parameter must be provided")
    for name, value in (("digest_bytes", digest_bytes), ("digest_bits", digest_bits)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise TypeError(f"'{name}' must be an integer")
    if digest_bits is None:
        if digest_bytes is None:
            digest_bytes = 64
        if not (1 <= digest_bytes <= 64):
            raise ValueError("'digest_bytes' not in range 1..64")
    else:
        if not (8 <= digest_bits <= 512) or (digest_bits % 8):
            raise ValueError("'digest_bits' not in range 8..512, with steps of 8")
        digest_bytes = digest_bits // 8

    if isinstance(key, KernelKey):
        if key.size is not None and key.size > 64:  # else the kernel checks it (blake2b setkey: EINVAL)
            raise ValueError("BLAKE2b key cannot exceed 64 bytes")
    elif len(key) > 64:
        raise ValueError("BLAKE2b key cannot exceed 64 bytes")

    return BLAKE2b_Hash(data, key, digest_bytes, update_after_digest)


__all__ = ["BLAKE2b_Hash", "new"]
