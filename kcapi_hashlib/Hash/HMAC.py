"""HMAC (RFC 2104) computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.HMAC``.

``digestmod`` is a hash module or hash object, PyCryptodome's (``Crypto.Hash.SHA256``) or ours
(``kcapi_hashlib.Hash.SHA256``): the MAC is the kernel's ``hmac(<hash>)`` on a keyed tfm from the shared key
cache (see kcapi_hashlib.hmac.clear_key_cache). A digestmod that names no hash the kernel has follows
kcapi_hashlib's policy; one that is nobody's hash (a module of your own) is used as given, with RFC 2104
computed over it exactly as PyCryptodome does.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any, Optional, Union

from .. import _hashes
from .._algorithms import ROWS
from .._callable import as_builtin
from ..hmac import compare_digest, identify, kernel_hmac, keyring_hmac
from ..keyring import KernelKey
from ._base import check_data, unhexlify_tag

Buffer = Union[bytes, bytearray, memoryview]

__all__ = ["new", "HMAC"]

# The hash's OID -> the OID of HMAC over it (kcapi_hashlib._algorithms).
_hash2hmac_oid: dict[str, str] = {row.oid: row.hmac_oid for row in ROWS if row.hmac_oid}

_hmac2hash_oid = {v: k for k, v in _hash2hmac_oid.items()}


def _default_digestmod() -> ModuleType:
    """Return MD5, the deprecated default hash, with a warning
    for the caller of :func:`new` (or of the :class:`HMAC` class)."""

    warnings.warn(
        "HMAC without 'digestmod' uses MD5, but this default is deprecated "
        "and will be removed: pass the hash explicitly (for instance, digestmod=SHA256)",
        DeprecationWarning,
        stacklevel=3,
    )
    from . import MD5

    return MD5


class _Ours:
    """kcapi_hashlib's hash `name` with the module interface RFC 2104 below needs (new, sizes)."""

    def __init__(self, name: str) -> None:
        self._ctor = _hashes.CONSTRUCTORS[name]
        self.digest_size = _hashes.ALGORITHMS[name].digest_size
        self.block_size = _hashes.ALGORITHMS[name].block_size

    def new(self, data: Buffer = b"") -> Any:
        return self._ctor(data)


class _RFC2104:
    """HMAC over hash objects, as PyCryptodome computes it (for digestmods the kernel cannot run as hmac)."""

    def __init__(self, key: bytes, digestmod: Any) -> None:
        bs = digestmod.block_size
        if len(key) <= bs:
            key_0 = key + b"\x00" * (bs - len(key))
        else:
            hash_k = digestmod.new(key).digest()
            key_0 = hash_k + b"\x00" * (bs - len(hash_k))
        self._inner = digestmod.new(key_0.translate(_TRANS_36))
        self._outer = digestmod.new(key_0.translate(_TRANS_5C))

    def update(self, msg: Buffer) -> None:
        self._inner.update(msg)

    def copy(self) -> _RFC2104:
        other = _RFC2104.__new__(_RFC2104)
        other._inner = self._inner.copy()
        other._outer = self._outer.copy()
        return other

    def digest(self) -> bytes:
        frozen_outer_hash = self._outer.copy()
        frozen_outer_hash.update(self._inner.digest())
        return frozen_outer_hash.digest()  # type: ignore[no-any-return]


_TRANS_36 = bytes(x ^ 0x36 for x in range(256))
_TRANS_5C = bytes(x ^ 0x5C for x in range(256))


class HMAC:
    """An HMAC hash object.
    Do not instantiate directly. Use the :func:`new` function.

    :ivar digest_size: the size in bytes of the resulting MAC tag
    :vartype digest_size: integer

    :ivar oid: the ASN.1 object ID of the HMAC algorithm.
               Only present if the algorithm was officially assigned one.
    """

    _mac: Any
    _sealed_by_digest: bool
    _digested: bool

    def __init__(
        self, key: Union[Buffer, KernelKey], msg: Buffer = b"", digestmod: Optional[ModuleType] = None
    ) -> None:
        if digestmod is None:
            digestmod = _default_digestmod()

        if msg is None:
            msg = b""

        # Size of the MAC tag
        self.digest_size = digestmod.digest_size

        self._digestmod = digestmod

        # Hash OID --> HMAC OID
        try:
            self.oid = _hash2hmac_oid[digestmod.oid]
        except (KeyError, AttributeError):
            pass

        if isinstance(key, KernelKey):
            # A kernel keyring key: the kernel's hmac(<hash>) or nothing (no bytes for RFC 2104 in userspace).
            self._mac = keyring_hmac(key, digestmod)
            self._sealed_by_digest = self._seals(identify(digestmod), digestmod)
            self._digested = False
            check_data(msg)
            self._mac.update(msg)
            return

        if isinstance(key, memoryview):
            key = key.tobytes()

        try:
            block_size = digestmod.block_size
        except AttributeError:
            # Not all hash types have "block_size"
            raise ValueError("Hash type incompatible to HMAC") from None
        if not isinstance(key, (bytes, bytearray)):
            # PyCryptodome's own errors for keys of other types (str, ...)
            if len(key) <= block_size:
                key + b"\x00" * (block_size - len(key))
            check_data(key)
            raise TypeError(f"Object type {type(key)} cannot be passed to C code")

        name = identify(digestmod)
        mac: Any = kernel_hmac(name, key)
        if mac is None:
            mac = _RFC2104(bytes(key), _Ours(name) if name is not None else digestmod)
        self._mac = mac
        # PyCryptodome's SHA-3 objects refuse update() after digest() (unless made with update_after_digest),
        # and its HMAC inherits that from its inner hash object: so does ours.
        self._sealed_by_digest = self._seals(name, digestmod)
        self._digested = False
        check_data(msg)
        mac.update(msg)

    @staticmethod
    def _seals(name: Optional[str], digestmod: Any) -> bool:
        return bool(
            name is not None and name.startswith("sha3_") and not getattr(digestmod, "_update_after_digest", False)
        )

    def update(self, msg: Buffer) -> HMAC:
        """Authenticate the next chunk of message.

        Args:
            data (byte string/byte array/memoryview): The next chunk of data
        """

        if self._digested and self._sealed_by_digest:
            raise TypeError("You can only call 'digest' or 'hexdigest' on this object")
        check_data(msg)
        self._mac.update(msg)
        return self

    def copy(self) -> HMAC:
        """Return a copy ("clone") of the HMAC object.

        The copy will have the same internal state as the original HMAC
        object.
        This can be used to efficiently compute the MAC tag of byte
        strings that share a common initial substring.

        :return: An :class:`HMAC`
        """

        new_hmac = HMAC.__new__(HMAC)
        new_hmac.__dict__.update(self.__dict__)
        new_hmac._mac = self._mac.copy()
        new_hmac._digested = False  # as PyCryptodome: the inner hash of a copy is a fresh object
        return new_hmac

    def digest(self) -> bytes:
        """Return the **binary** (non-printable) MAC tag of the message
        authenticated so far.

        :return: The MAC tag digest, computed over the data processed so far.
                 Binary form.
        :rtype: byte string
        """

        self._digested = True
        return self._mac.digest()  # type: ignore[no-any-return]

    def verify(self, mac_tag: Buffer) -> None:
        """Verify that a given **binary** MAC (computed by another party)
        is valid.

        Args:
          mac_tag (byte string/byte string/memoryview): the expected MAC of the message.

        Raises:
            ValueError: if the MAC does not match. It means that the message
                has been tampered with or that the MAC key is incorrect.
        """

        if not compare_digest(mac_tag, self.digest()):
            raise ValueError("MAC check failed")

    def hexdigest(self) -> str:
        """Return the **printable** MAC tag of the message authenticated so far.

        :return: The MAC tag, computed over the data processed so far.
                 Hexadecimal encoded.
        :rtype: string
        """

        return self.digest().hex()

    def hexverify(self, hex_mac_tag: str) -> None:
        """Verify that a given **printable** MAC (computed by another party)
        is valid.

        Args:
            hex_mac_tag (string): the expected MAC of the message,
                as a hexadecimal string.

        Raises:
            ValueError: if the MAC does not match. It means that the message
                has been tampered with or that the MAC key is incorrect.
        """

        self.verify(unhexlify_tag(hex_mac_tag))


@as_builtin()
def new(key: Union[Buffer, KernelKey], msg: Buffer = b"", digestmod: Optional[ModuleType] = None) -> HMAC:
    """Create a new MAC object.

    Args:
        key (bytes/bytearray/memoryview/kcapi_hashlib.keyring.KernelKey):
            key for the MAC object (a KernelKey: a kernel keyring key, used by the kernel by serial).
            It must be long enough to match the expected security level of the
            MAC.
        msg (bytes/bytearray/memoryview):
            Optional. The very first chunk of the message to authenticate.
            It is equivalent to an early call to :meth:`HMAC.update`.
        digestmod (module):
            The hash to use to implement the HMAC, like
            :mod:`Crypto.Hash.SHA256` (or a hash object created from it).
            It is mandatory.

            .. deprecated:: 4.0
                If omitted, :mod:`Crypto.Hash.MD5` is used, with a
                :class:`DeprecationWarning`. This default will be removed.

    Returns:
        An :class:`HMAC` object
    """

    if digestmod is None:
        digestmod = _default_digestmod()
    return HMAC(key, msg, digestmod)
