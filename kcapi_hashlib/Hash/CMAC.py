"""CMAC (NIST SP 800-38B, RFC 4493) computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.CMAC``.

The kernel's ``cmac(<cipher>)`` template (crypto/cmac.c, a keyed hash) runs the MAC: ``ciphermod`` is
identified by its module name (PyCryptodome's ``Crypto.Cipher.AES`` / ``DES3`` / ``DES`` / ``Blowfish`` /
``CAST`` or kcapi_hashlib's own ``kcapi_hashlib.Cipher.*``), never by importing it. Keys are checked as
PyCryptodome's ciphers check them, with the same messages, before they reach the kernel (which, e.g., takes
a degenerate Triple DES key that PyCryptodome refuses, and answers an empty AES key with a bare EINVAL).
Keyed tfms come from the shared key cache (kcapi_hashlib.hmac.clear_key_cache). A cipher the kernel cannot
run as cmac(...) follows kcapi_hashlib's policy (fallback: SP 800-38B computed over ``ciphermod`` itself).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Optional, Union

from .. import _afalg, _hashes, _policy
from .. import keyring as _keyring
from .._afalg import keyed as _keyed
from .._callable import as_builtin
from ..hmac import compare_digest
from ..keyring import KernelKey
from ._base import unhexlify_tag

Buffer = Union[bytes, bytearray, memoryview]

# The size of the authentication tag produced by the MAC.
digest_size: Optional[int] = None

_CIPHER_PACKAGES = ("Crypto.Cipher.", "Cryptodome.Cipher.", "kcapi_hashlib.Cipher.")


def _parity(key: bytes) -> bytes:
    def parity_byte(key_byte: int) -> int:
        parity = 1
        for i in range(1, 8):
            parity ^= (key_byte >> i) & 1
        return (key_byte & 0xFE) | parity

    return bytes(parity_byte(x) for x in key)


def _tdes_key(key: bytes) -> bytes:
    # PyCryptodome's DES3.adjust_key_parity checks; the kernel's des3_ede wants K1 || K2 || K3 (24 bytes).
    if len(key) not in (16, 24):
        raise ValueError("Not a valid TDES key")
    adjusted = _parity(key)
    if adjusted[:8] == adjusted[8:16] or adjusted[-16:-8] == adjusted[-8:]:
        raise ValueError("Triple DES key degenerates to single DES")
    return key if len(key) == 24 else key + key[:8]


def _sized(label: str, sizes: Any) -> Callable[[bytes], bytes]:
    def check(key: bytes) -> bytes:
        if len(key) not in sizes:
            raise ValueError(f"Incorrect {label} key length ({len(key)} bytes)")
        return key

    return check


# PyCryptodome module leaf name -> (kernel cipher, block size, key check returning the kernel's key,
# cipher_params that do not change the result)
_CIPHERS: dict[str, tuple[str, int, Callable[[bytes], bytes], frozenset[str]]] = {
    "AES": ("aes", 16, _sized("AES", (16, 24, 32)), frozenset({"use_aesni"})),
    "DES3": ("des3_ede", 8, _tdes_key, frozenset()),
    "DES": ("des", 8, _sized("DES", (8,)), frozenset()),
    "Blowfish": ("blowfish", 8, _sized("Blowfish", range(4, 57)), frozenset()),
    "CAST": ("cast5", 8, _sized("CAST", range(5, 17)), frozenset()),
}


def _kernel_cmac(key_obj: Any, ciphermod: Any, cipher_params: dict[str, Any], bs: int) -> Any:
    """The kernel's cmac(<cipher>) hash object keyed with key, or (policy permitting) a userspace CMAC.

    key_obj is checked as PyCryptodome's cipher modules check the key they are given: its len() (in items)
    against the key sizes, then its type (bytes, bytearray, memoryview); the kernel gets its bytes."""
    modname = getattr(ciphermod, "__name__", "") or type(ciphermod).__name__
    package, _, leaf = modname.rpartition(".")
    spec = _CIPHERS.get(leaf) if package + "." in _CIPHER_PACKAGES else None
    if isinstance(key_obj, KernelKey):
        return _keyring_cmac(key_obj, modname, leaf, spec, cipher_params, bs)
    key = bytes(key_obj)  # PyCryptodome's CMAC: self._key = bytes(key), before anything else
    reason: object = f"the kernel has no cmac for the cipher module {modname!r}"
    if spec is not None and spec[1] == bs:
        kcipher, _, check, harmless = spec
        check(key_obj)
        if not isinstance(key_obj, (bytes, bytearray, memoryview)):
            raise TypeError(f"Object type {type(key_obj)} cannot be passed to C code")
        kernel_key = check(key)  # its bytes: a view of wide items has more bytes than items
        extra = sorted(set(cipher_params) - harmless)
        if extra:
            reason = f"the kernel's cmac({kcipher}) takes no cipher parameters ({', '.join(extra)})"
        else:
            try:
                tfm = _keyed.cached_tfm("hash", f"cmac({kcipher})", kernel_key)
            except _afalg.AlgUnavailable as e:
                reason = e
            else:
                return _hashes.HASH._create(f"cmac({kcipher})", bs, bs, tfm)
    _policy.unavailable("cmac", f"cmac({leaf or modname})", reason)
    return _SP800_38B(key, ciphermod, cipher_params, bs)


def _keyring_cmac(
    key: KernelKey,
    modname: str,
    leaf: str,
    spec: Optional[tuple[str, int, Callable[[bytes], bytes], frozenset[str]]],
    cipher_params: dict[str, Any],
    bs: int,
) -> Any:
    """cmac(<cipher>) keyed from the kernel keyring. No SP 800-38B fallback under any policy: the key's bytes are
    not in this process. The key's size is the kernel's to check (the cipher's setkey: EINVAL -> ValueError);
    for Triple DES the kernel's des3_ede takes 24-byte keys only (PyCryptodome's 16-byte form is expanded from the
    bytes, which a keyring key does not give)."""
    label = f"cmac({leaf or modname})"
    if spec is None or spec[1] != bs:
        _keyring.unsupported("cmac", label, key, f"the kernel has no cmac for the cipher module {modname!r}")
    kcipher = spec[0]
    extra = sorted(set(cipher_params) - spec[3])
    if extra:
        _keyring.unsupported(
            "cmac", label, key, f"the kernel's cmac({kcipher}) takes no cipher parameters ({', '.join(extra)})"
        )
    tfm = _keyring.kernel_tfm(key, "hash", f"cmac({kcipher})", "cmac", label)
    return _hashes.HASH._create(f"cmac({kcipher})", bs, bs, tfm)


class _SP800_38B:
    """CMAC computed over ciphermod's ECB/CBC in userspace (the fallback policy only), as PyCryptodome does."""

    def __init__(self, key: bytes, ciphermod: Any, cipher_params: dict[str, Any], bs: int) -> None:
        const_rb = 0x1B if bs == 8 else 0x87
        mask = (1 << (8 * bs)) - 1
        ecb = ciphermod.new(key, ciphermod.MODE_ECB, **cipher_params)
        el = int.from_bytes(ecb.encrypt(b"\x00" * bs), "big")
        k1 = ((el << 1) & mask) ^ (const_rb if el >> (8 * bs - 1) else 0)
        k2 = ((k1 << 1) & mask) ^ (const_rb if k1 >> (8 * bs - 1) else 0)
        self._bs = bs
        self._ecb = ecb
        self._k1, self._k2 = k1, k2
        self._cbc = ciphermod.new(key, ciphermod.MODE_CBC, b"\x00" * bs, **cipher_params)
        self._new_cbc: Callable[[bytes], Any] = lambda iv: ciphermod.new(key, ciphermod.MODE_CBC, iv, **cipher_params)
        self._last_ct = b"\x00" * bs
        self._pending = b""  # never a whole block that is not the last one seen

    def update(self, msg: Buffer) -> None:
        data = self._pending + bytes(msg)
        bs = self._bs
        # Keep the last (possibly whole) block: it is processed with a subkey at digest time.
        keep = len(data) % bs or (bs if data else 0)
        body, self._pending = data[: len(data) - keep], data[len(data) - keep :]
        if body:
            self._last_ct = self._cbc.encrypt(body)[-bs:]

    def copy(self) -> _SP800_38B:
        other = _SP800_38B.__new__(_SP800_38B)
        other.__dict__.update(self.__dict__)
        other._cbc = self._new_cbc(self._last_ct)
        return other

    def digest(self) -> bytes:
        bs = self._bs
        last = self._pending
        if len(last) == bs:
            block = int.from_bytes(last, "big") ^ self._k1
        else:
            padded = last + b"\x80" + b"\x00" * (bs - len(last) - 1)
            block = int.from_bytes(padded, "big") ^ self._k2
        block ^= int.from_bytes(self._last_ct, "big")
        return self._ecb.encrypt(block.to_bytes(bs, "big"))  # type: ignore[no-any-return]


def _c_block(block: Any) -> None:
    """PyCryptodome's cipher encrypt() on a block-aligned chunk: empty chunks never reach C; others must be
    bytes, bytearray or memoryview (c_uint8_ptr), and a memoryview C-contiguous (BufferError, as there: a strided
    view such as memoryview(b)[::2] is refused once a block-aligned part of it reaches the cipher)."""
    if not len(block):
        return
    if not isinstance(block, (bytes, bytearray, memoryview)):
        raise TypeError(f"Object type {type(block)} cannot be passed to C code")
    if isinstance(block, memoryview) and not block.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")


def _accept_msg(msg: Any, cache_n: int, bs: int) -> int:
    """Run PyCryptodome's CMAC.update() bookkeeping on msg (its len(), slices and cache assignments, on a
    scratch cache) so that exactly the inputs it refuses are refused, with its errors; returns its new cache
    count. The data MACed is msg's bytes, whatever its item size (see CMAC.update)."""
    cache = bytearray(bs)
    n = len(msg)
    if cache_n > 0:
        filler = min(bs - cache_n, n)
        cache[cache_n : cache_n + filler] = msg[:filler]
        if cache_n + filler < bs:
            return cache_n + filler
        msg = memoryview(msg)[filler:]
        n = len(msg)
    remain = n % bs
    if remain > 0:
        _c_block(msg[:-remain])
        cache[:remain] = msg[-remain:]
    else:
        _c_block(msg)
    return remain


def _msg_bytes(msg: Any) -> Any:
    """The bytes of an accepted message: a buffer's bytes (C order), or a sequence of ints as bytes."""
    if isinstance(msg, (bytes, bytearray)):
        return msg
    if not len(msg):
        return b""
    try:
        view = memoryview(msg)
    except TypeError:
        return bytes(msg)
    return view.cast("B") if view.c_contiguous and view.ndim else view.tobytes()  # any layout, in bytes


class CMAC:
    """A CMAC hash object.
    Do not instantiate directly. Use the :func:`new` function.

    :ivar digest_size: the size in bytes of the resulting MAC tag
    :vartype digest_size: integer
    """

    digest_size: Optional[int] = None

    def __init__(
        self,
        key: Union[Buffer, KernelKey],
        msg: Optional[Buffer],
        ciphermod: ModuleType,
        cipher_params: dict[str, Any],
        mac_len: int,
        update_after_digest: bool,
    ) -> None:
        self.digest_size = mac_len

        self._cache_n = 0  # PyCryptodome's count of cached message items (for its errors, see _accept_msg)
        self._factory = ciphermod
        self._cipher_params = cipher_params
        self._block_size = bs = ciphermod.block_size
        self._mac_tag: Optional[bytes] = None
        self._update_after_digest = update_after_digest

        # Section 5.3 of NIST SP 800 38B and Appendix B
        if bs == 8:
            self._max_size = 8 * (2**21)
        elif bs == 16:
            self._max_size = 16 * (2**48)
        else:
            raise TypeError(f"CMAC requires a cipher with a block size of 8 or 16 bytes, not {bs:d}")

        self._mac = _kernel_cmac(key, ciphermod, self._cipher_params, bs)  # the key object, as the cipher gets it

        # Counter for total message size
        self._data_size = 0

        if msg:
            self.update(msg)

    def update(self, msg: Buffer) -> CMAC:
        """Authenticate the next chunk of message.

        Args:
            data (byte string/byte array/memoryview): The next chunk of data
        """

        if self._mac_tag is not None and not self._update_after_digest:
            raise TypeError("update() cannot be called after digest() or verify()")

        self._data_size += len(msg)  # as PyCryptodome: counted before its checks (in items)
        if isinstance(msg, (bytes, bytearray)):
            self._cache_n = (self._cache_n + len(msg)) % self._block_size
        else:
            self._cache_n = _accept_msg(msg, self._cache_n, self._block_size)
        self._mac.update(_msg_bytes(msg))
        return self

    def copy(self) -> CMAC:
        """Return a copy ("clone") of the CMAC object.

        The copy will have the same internal state as the original CMAC
        object.
        This can be used to efficiently compute the MAC tag of byte
        strings that share a common initial substring.

        :return: An :class:`CMAC`
        """

        obj = self.__new__(CMAC)
        obj.__dict__ = self.__dict__.copy()
        obj._mac = self._mac.copy()
        return obj

    def digest(self) -> bytes:
        """Return the **binary** (non-printable) MAC tag of the message
        that has been authenticated so far.

        :return: The MAC tag, computed over the data processed so far.
                 Binary form.
        :rtype: byte string
        """

        if self._mac_tag is not None and not self._update_after_digest:
            return self._mac_tag

        if self._data_size > self._max_size:
            raise ValueError("MAC is unsafe for this message")

        self._mac_tag = self._mac.digest()[: self.digest_size]

        return self._mac_tag

    def hexdigest(self) -> str:
        """Return the **printable** MAC tag of the message authenticated so far.

        :return: The MAC tag, computed over the data processed so far.
                 Hexadecimal encoded.
        :rtype: string
        """

        return self.digest().hex()

    def verify(self, mac_tag: Buffer) -> None:
        """Verify that a given **binary** MAC (computed by another party)
        is valid.

        Args:
          mac_tag (byte string/byte array/memoryview): the expected MAC of the message.

        Raises:
            ValueError: if the MAC does not match. It means that the message
                has been tampered with or that the MAC key is incorrect.
        """

        if not compare_digest(mac_tag, self.digest()):
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


@as_builtin()
def new(
    key: Union[Buffer, KernelKey],
    msg: Optional[Buffer] = None,
    ciphermod: Optional[ModuleType] = None,
    cipher_params: Optional[dict[str, Any]] = None,
    mac_len: Optional[int] = None,
    update_after_digest: bool = False,
) -> CMAC:
    """Create a new MAC object.

    Args:
        key (byte string/byte array/memoryview/kcapi_hashlib.keyring.KernelKey):
            key for the CMAC object (a KernelKey: a kernel keyring key, used by the kernel by serial).
            The key must be valid for the underlying cipher algorithm.
            For instance, it must be 16 bytes long for AES-128.
        ciphermod (module):
            A cipher module from :mod:`Crypto.Cipher`.
            The cipher's block size has to be 128 bits,
            like :mod:`Crypto.Cipher.AES`, to reduce the probability
            of collisions.
        msg (byte string/byte array/memoryview):
            Optional. The very first chunk of the message to authenticate.
            It is equivalent to an early call to `CMAC.update`. Optional.
        cipher_params (dict):
            Optional. A set of parameters to use when instantiating a cipher
            object.
        mac_len (integer):
            Length of the MAC, in bytes.
            It must be at least 4 bytes long.
            The default (and recommended) length matches the size of a cipher block.
        update_after_digest (boolean):
            Optional. By default, a hash object cannot be updated anymore after
            the digest is computed. When this flag is ``True``, such check
            is no longer enforced.
    Returns:
        A :class:`CMAC` object
    """

    if ciphermod is None:
        raise TypeError("ciphermod must be specified (try AES)")

    cipher_params = {} if cipher_params is None else dict(cipher_params)

    if mac_len is None:
        mac_len = ciphermod.block_size

    if mac_len < 4:
        raise ValueError("MAC tag length must be at least 4 bytes long")

    if mac_len > ciphermod.block_size:
        raise ValueError(f"MAC tag length cannot be larger than a cipher block ({ciphermod.block_size:d}) bytes")

    return CMAC(key, msg, ciphermod, cipher_params, mac_len, update_after_digest)


__all__ = ["CMAC", "new"]
