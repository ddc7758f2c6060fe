"""Galois/Counter Mode (NIST SP 800-38D) on the kernel: PyCryptodome's GcmMode API over gcm(aes).

- 12-byte nonces: the kernel's gcm(aes) template (its IV is exactly the 12-byte nonce: J0 = IV || 0^31 || 1).
  Its tag sizes are 4, 8 and 12..16 bytes (crypto_gcm_check_authsize); the other mac_len values PyCryptodome
  allows (5, 6, 7, 9, 10, 11) use the 16-byte tag, truncated.
- Other nonce lengths: J0 = GHASH_H(IV || 0^(s+64) || [len(IV)]_64) is computed by the kernel without a GHASH
  primitive: gcm(aes) with no AAD and *ciphertext* IV computes exactly GHASH_H(IV || pad || 0^64 ||
  [len(IV)]_64) XOR E_K(N0 || 1) as its tag (SP 800-38D, Algorithm 4, step 5-6). To make the ciphertext
  equal IV, the plaintext given is IV XOR the keystream of N0, which ctr(aes) supplies together with
  E_K(N0 || 1). The message then runs as GCTR from inc32(J0) on ctr(aes) (split where the 32-bit counter
  wraps: the kernel's ctr increments all 128 bits) and its tag is GHASH over (A, C) from the kernel's
  'ghash' hash keyed with H = E_K(0^128) (6.1; absent on 7.2), or, without it, by the same gcm(aes)
  construction over the buffered ciphertext; XORed with E_K(J0).
"""

from __future__ import annotations

import struct
from threading import get_ident
from typing import Any, Optional, cast

from .. import keyring as _keyring
from .._afalg import HashStream, KernelError, Serial
from .._afalg import core as _core
from .._afalg import keyed as _keyed
from ..keyring import KernelKey
from ._aead import (
    Buffer,
    Mac,
    Native,
    NistAeadCipher,
    PaddedHashMac,
    is_buffer,
    too_long,
    xor16,
)
from ._common import Unavailable, nbytes, pycryptodome_fallback, zeros
from ._common import c_buffer as flat
from ._state_machine import ALL, Method

__all__ = ["GcmMode"]

# See NIST SP 800 38D, 5.2.1.1: at most 2**39 - 256 bits of plaintext, and 2**64 - 1 bits of AAD
_MAX_MSG_LEN = 2**36 - 32
_MAX_AAD_LEN = 2**61 - 1

# crypto/gcm.c crypto_gcm_check_authsize
_KERNEL_AUTHSIZES = (4, 8, 12, 13, 14, 15, 16)
_N0 = bytes(12)  # the internal nonce of the GHASH construction (its keystream never leaves this module)


class _GhashMac(PaddedHashMac):
    """GHASH_H(A || pad || C || pad || [len A]_64 || [len C]_64) XOR E_K(J0) with the kernel's 'ghash' hash."""

    def __init__(self, mode: GcmMode) -> None:
        h = mode._ecb_block(bytes(16))
        # H is per key, not per message: the 'ghash' tfm keyed with it comes from the keyed-tfm cache (no socket,
        # bind, setsockopt per message; its op socket from the tfm's pool). A tfm's key never changes (keyed.py).
        super().__init__(HashStream(_keyed.cached_tfm("hash", "ghash", h)))
        self._ek_j0 = mode._ecb_block(mode._j0())

    def _lengths(self) -> bytes:
        return struct.pack(">QQ", 8 * self._alen, 8 * self._clen)  # in bits, big-endian

    def _finish(self, s: bytes) -> bytes:
        return xor16(s, self._ek_j0)


class _GcmBuiltMac(Mac):
    """The same tag from gcm(aes) itself (no 'ghash' hash): the ciphertext is buffered, one operation at the end."""

    def __init__(self, mode: GcmMode) -> None:
        self._mode = mode
        self._aad = b""
        self._c: list[bytes] = [bytes(16)]  # joined: 0^128 || C, as _ghash takes it

    def aad(self, data: Buffer) -> None:
        self._aad = bytes(data)

    def data(self, data: Buffer) -> None:
        self._c.append(bytes(data))

    def digest(self) -> bytes:
        zc = b"".join(self._c)
        self._c = []
        return xor16(self._mode._ghash(self._aad, zc), self._mode._ecb_block(self._mode._j0()))


class GcmMode(NistAeadCipher):
    """Galois Counter Mode (GCM), computed by the kernel. See PyCryptodome's GcmMode."""

    def __init__(
        self,
        factory: Any,
        key: Buffer,
        nonce: Buffer,
        mac_len: int,
        cipher_params: dict[str, Any],
        threads: int = 1,
    ) -> None:
        self.block_size = factory.block_size
        if self.block_size != 16:
            raise ValueError("GCM mode is only available for ciphers that operate on 128 bits blocks")

        if len(nonce) == 0:
            raise ValueError("Nonce cannot be empty")

        if type(nonce) is not bytes and not is_buffer(nonce):
            raise TypeError("Nonce must be bytes, bytearray or memoryview")

        # See NIST SP 800 38D, 5.2.1.1
        if len(nonce) > 2**64 - 1:
            raise ValueError("Nonce exceeds maximum length")

        self.nonce = bytes(nonce)
        """The nonce originally used to create the object."""

        self._factory = factory
        if type(key) is not bytes and not isinstance(key, KernelKey):
            bytes(key)  # PyCryptodome copies the key first (its errors for a str); its ECB/CBC checks the original
        self._kname = factory._KERNEL
        if not (4 <= mac_len <= 16):
            raise ValueError("Parameter 'mac_len' must be in the range 4..16")

        # PyCryptodome builds an ECB cipher here (for H): the same key and parameter checks, in that order.
        params = dict(cipher_params)
        params["key"] = key
        key = factory._create_base_cipher(params)
        if params:
            raise TypeError(f"Unknown parameters for ECB: {params}")
        # ... and a CTR cipher, which checks `threads` (the kernel does its own scheduling).
        if not isinstance(threads, int) or isinstance(threads, bool):  # Crypto.Util._threads.threads_param
            raise TypeError("'threads' must be an integer")
        if threads < 0:
            raise ValueError("'threads' must be a non-negative integer")

        # A kernel keyring key travels as its serial where key bytes would (every consumer, _sk.keyed, aead_once,
        # stream_once, hands it to keyed.cached_tfm or core.Tfm, which key the tfm by ALG_SET_KEY_BY_KEY_SERIAL).
        self._setup(cast(bytes, Serial(key.serial)) if isinstance(key, KernelKey) else bytes(key), mac_len)
        self._next = list(ALL)
        self._status_ct = False
        self._j0_cache: Optional[bytes] = None
        if len(self.nonce) == 12:
            if mac_len in _KERNEL_AUTHSIZES:
                authsize = None if mac_len == 16 else mac_len
                self._nat: Optional[Native] = Native(f"gcm({self._kname})", authsize, self.nonce, True)
            else:
                self._nat = Native(f"gcm({self._kname})", None, self.nonce, False)
        else:
            self._nat = None

    # --- kernel plumbing ---

    def _native(self) -> Optional[Native]:
        return self._nat

    def _gctr(self, icb: bytes, data: Buffer, offset: int, out: memoryview) -> None:
        """out = data XOR GCTR_K's key stream from counter block `icb` (SP 800-38D 6.5), from byte `offset`, on
        ctr(aes): block b uses inc32^b(icb), where only the low 32 bits count; the kernel's ctr increments all
        128, so a message ends where they wrap."""
        hi = icb[:12]
        lo = int.from_bytes(icb[12:], "big")

        def iv_at(block: int) -> bytes:
            return hi + ((lo + block) & 0xFFFFFFFF).to_bytes(4, "big")

        def boundary(block: int) -> int:
            return block + 0x100000000 - ((lo + block) & 0xFFFFFFFF)

        self._stream_xor(f"ctr({self._kname})", 16, iv_at, data, offset, out, boundary)

    def _ecb_block(self, block: bytes) -> bytes:
        """E_K(block): the first key-stream block of ctr(aes) from counter `block`."""
        out = bytearray(16)
        self._gctr(block, zeros(16), 0, memoryview(out))
        return bytes(out)

    def _ghash(self, aad: bytes, zc: bytes) -> bytes:
        """S = GHASH_H(A || pad || C || pad || [len A]_64 || [len C]_64), by gcm(aes) (module docstring), where
        zc = 0^128 || C: GCTR from N0||1 over it gives E_K(N0||1) and then C XOR the keystream gcm(aes) will use."""
        ks = bytearray(len(zc))
        self._gctr(_N0 + b"\x00\x00\x00\x01", zc, 0, memoryview(ks))
        nat = Native(f"gcm({self._kname})", None, _N0, True)
        tag = self._native_encrypt(nat, [aad], len(aad), [memoryview(ks)[16:]], None)
        return xor16(tag, bytes(ks[:16]))

    def _j0(self) -> bytes:
        if self._j0_cache is None:
            if len(self.nonce) == 12:
                self._j0_cache = self.nonce + b"\x00\x00\x00\x01"
            else:
                self._j0_cache = self._ghash(b"", bytes(16) + self.nonce)
        return self._j0_cache

    def _xor(self, data: Buffer, offset: int, out: memoryview) -> None:
        """The message's GCTR, from inc32(J0)."""
        j0 = self._j0()
        inc32 = j0[:12] + ((int.from_bytes(j0[12:], "big") + 1) & 0xFFFFFFFF).to_bytes(4, "big")
        self._gctr(inc32, data, offset, out)

    def _reference_tag(self, aad: bytes, plain: bytes, reason: KernelError) -> bytes:
        def make(real_factory: Any) -> bytes:
            import Crypto.Cipher  # its dispatcher and factory module: never names install() replaced

            ref = Crypto.Cipher._create_cipher(  # type: ignore[no-untyped-call]
                real_factory, self._key, 11, nonce=self.nonce, mac_len=16, add_aes_modes=True
            )
            ref.update(aad)
            ref.encrypt(plain)
            return ref.digest()  # type: ignore[no-any-return]

        what = f"gcm({self._kname}) message of {len(aad) + len(plain)} bytes"
        return pycryptodome_fallback(what, reason, self._factory._PYCRYPTODOME, make)  # type: ignore[no-any-return]

    def _new_mac(self) -> Mac:
        try:
            return _GhashMac(self)
        except _core.AlgUnavailable:
            if self._nat is not None:
                raise  # stay buffered on gcm(aes) itself
            return _GcmBuiltMac(self)

    # --- PyCryptodome's API ---

    def update(self, assoc_data: Buffer) -> GcmMode:
        """Protect associated data (see PyCryptodome's GcmMode.update)."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            if Method.UPDATE not in self._next:
                raise TypeError("update() can only be called immediately after initialization")

            # See NIST SP 800 38D, 5.2.1.1
            if self._aad_len + nbytes(assoc_data) > _MAX_AAD_LEN:
                too_long("Additional Authenticated Data exceeds maximum length")

            self._next = [Method.UPDATE, Method.ENCRYPT, Method.DECRYPT, Method.DIGEST, Method.VERIFY]
            if is_buffer(assoc_data):
                piece = flat(assoc_data).tobytes()
            elif isinstance(assoc_data, str):
                raise TypeError("string argument without an encoding")
            elif _length(assoc_data) >= 16:  # PyCryptodome hands whole blocks to its C code, which refuses them
                raise TypeError(f"Object type {type(assoc_data)} cannot be passed to C code")
            else:  # ... and copies a last partial block with bytes(), as it does a short sequence of ints
                piece = bytes(assoc_data)
            self._broken = "update"
            self._aad.append(piece)
            self._aad_len += len(piece)
            self._broken = None
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        return self

    def _pre_encrypt(self, plaintext: Any) -> None:
        if Method.ENCRYPT not in self._next:
            raise TypeError("encrypt() can only be called after initialization or an update()")
        if self._data_len + nbytes(plaintext) > _MAX_MSG_LEN:
            too_long("Plaintext exceeds maximum length")
        self._next = [Method.ENCRYPT, Method.DIGEST]

    def _pre_decrypt(self, ciphertext: Any) -> None:
        if Method.DECRYPT not in self._next:
            raise TypeError("decrypt() can only be called after initialization or an update()")
        if self._data_len + nbytes(ciphertext) > _MAX_MSG_LEN:
            too_long("Ciphertext exceeds maximum length")
        self._next = [Method.DECRYPT, Method.VERIFY]
        if isinstance(ciphertext, str):  # PyCryptodome hashes the ciphertext (bytes(...)) before decrypting
            raise TypeError("string argument without an encoding")


def _create_gcm_cipher(factory: Any, **kwargs: Any) -> Any:
    """Create a new block cipher, configured in Galois Counter Mode (GCM).

    Keyword Args: key, nonce (any length; 16 random bytes if absent), mac_len (4..16, default 16), threads
    (accepted for compatibility; the kernel schedules its own work). See PyCryptodome's _create_gcm_cipher.
    """
    try:
        key = kwargs.pop("key")
    except KeyError as e:
        raise TypeError("Missing parameter:" + str(e)) from None

    nonce = kwargs.pop("nonce", None)
    if nonce is None:
        nonce = _random(16)
    mac_len = kwargs.pop("mac_len", 16)
    threads = kwargs.pop("threads", 1)
    kwargs.pop("use_clmul", None)  # PyCryptodome's undocumented GHASH switch: meaningless here

    kernel = factory._KERNEL
    why = _core.probe("aead", f"gcm({kernel})") or _core.probe("skcipher", f"ctr({kernel})")
    if why is not None:
        if isinstance(key, KernelKey):  # no PyCryptodome fallback: it would need the key's bytes
            _keyring.unsupported("cipher", f"{factory._NAME}-GCM", key, why)
        raise Unavailable(f"{factory._NAME}-GCM", why)  # the dispatcher applies the policy
    return GcmMode(factory, key, nonce, mac_len, kwargs, threads)


def _length(x: Any) -> int:
    """The length in bytes of what exports a buffer (array.array of any type code), else len(x)."""
    try:
        return memoryview(x).nbytes
    except TypeError:
        return len(x)


def _random(n: int) -> bytes:
    from ..Random import get_random_bytes

    return bytes(get_random_bytes(n))
