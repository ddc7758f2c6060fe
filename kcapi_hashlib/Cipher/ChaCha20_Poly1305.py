"""ChaCha20-Poly1305 (RFC 8439) and XChaCha20-Poly1305 on the kernel: PyCryptodome's
Crypto.Cipher.ChaCha20_Poly1305.

- 12-byte nonces: the kernel's rfc7539(chacha20,poly1305) (crypto/chacha20poly1305.c); 8-byte nonces are the
  same construction with the nonce prefixed by 4 zero bytes (RFC 8439 2.6, as PyCryptodome does).
- 24-byte nonces (XChaCha20-Poly1305, draft-irtf-cfrg-xchacha): the kernel has no AEAD template for it
  (rfc7539 insists on a 16-byte chacha IV; xchacha20's is 32: rfc7539(xchacha20,poly1305) is EINVAL), so it
  is composed from kernel primitives: xchacha20 (crypto/chacha_generic.c: HChaCha20 subkey from the first
  16 nonce bytes, then ChaCha20 with IV = stream position || last 8 nonce bytes, which with a counter below
  2^32 is the draft's 00000000 || nonce[16:24]) for the keystream, and the 'poly1305' hash (whose key is the
  first 32 bytes of the data, crypto/poly1305_generic.c) for the tag. Kernels without that hash (gone by
  7.x) cannot serve XChaCha20-Poly1305: the policy decides (strict raises, fallback uses PyCryptodome).
- Large messages stream the same way over chacha20 + poly1305 (the one-time key is block 0's keystream).
"""

from __future__ import annotations

import functools
import struct
from threading import get_ident
from typing import Any, Optional

from .._afalg import KernelError, mac_stream
from .._afalg import core as _core
from .._callable import as_builtin
from ._aead import AeadCipher, Buffer, Mac, Native, PaddedHashMac, c_buffer, is_buffer
from ._common import c_buffer as flat
from ._common import nbytes, pycryptodome_fallback
from ._state_machine import Method

__all__ = ["ChaCha20Poly1305Cipher", "new", "key_size"]

_REPLACES = ["new"]


class _Poly1305Mac(PaddedHashMac):
    """Poly1305(otk, A || pad16 || C || pad16 || le64 len A || le64 len C) with the kernel's 'poly1305' hash."""

    def __init__(self, otk: bytes) -> None:
        super().__init__(mac_stream("poly1305"))
        self._stream.update([otk])  # the hash's key is the first 32 bytes of its data (poly1305_generic.c)

    def _lengths(self) -> bytes:
        return struct.pack("<QQ", self._alen, self._clen)  # in bytes, little-endian


class ChaCha20Poly1305Cipher(AeadCipher):
    """ChaCha20-Poly1305 and XChaCha20-Poly1305 cipher object, computed by the kernel.
    Do not create it directly. Use :py:func:`new` instead.

    :var nonce: The nonce with length 8, 12 or 24 bytes
    :vartype nonce: byte string
    """

    nonce: bytes

    def __init__(self, key: bytes, nonce: bytes) -> None:
        self._setup(key, 16)
        self._next: tuple[Method, ...] = (
            Method.UPDATE,
            Method.ENCRYPT,
            Method.DECRYPT,
            Method.DIGEST,
            Method.VERIFY,
        )
        self.nonce = nonce
        self._x = len(nonce) == 24
        if self._x:
            self._nat: Optional[Native] = None
        else:
            n12 = nonce if len(nonce) == 12 else b"\x00\x00\x00\x00" + nonce
            self._n12 = n12
            self._nat = Native("rfc7539(chacha20,poly1305)", None, n12, True)
        self._pad_done = False

    # --- kernel plumbing ---

    def _native(self) -> Optional[Native]:
        return self._nat

    def _iv_at(self, block: int) -> bytes:
        # block -1 is the Poly1305 key block (counter 0); data starts at counter 1.
        if self._x:
            return self.nonce + struct.pack("<Q", block + 1)
        return struct.pack("<I", block + 1) + self._n12

    def _xor(self, data: Buffer, offset: int, out: memoryview) -> None:
        self._stream_xor("xchacha20" if self._x else "chacha20", 64, self._iv_at, data, offset, out)

    def _reference_tag(self, aad: bytes, plain: bytes, reason: KernelError) -> bytes:
        def make(real: Any) -> bytes:
            ref = _pycryptodome_cipher(real, self._key, self.nonce)
            ref.update(aad)
            ref.encrypt(plain)
            return ref.digest()  # type: ignore[no-any-return]

        what = f"rfc7539(chacha20,poly1305) message of {len(aad) + len(plain)} bytes"
        return pycryptodome_fallback(what, reason, "Crypto.Cipher.ChaCha20_Poly1305", make)  # type: ignore[no-any-return]

    def _new_mac(self) -> Mac:
        why = _core.probe("hash", "poly1305")
        if why is not None:
            raise why
        otk = bytearray(64)
        self._stream_xor("xchacha20" if self._x else "chacha20", 64, self._iv_at, bytes(64), -64, memoryview(otk))
        return _Poly1305Mac(bytes(otk[:32]))

    # --- PyCryptodome's API ---

    def update(self, data: Buffer) -> None:
        """Protect the associated data."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            if Method.UPDATE not in self._next:
                raise TypeError("update() method cannot be called")
            nbytes(data)  # PyCryptodome counts the AAD with len() first: its TypeError for an int
            c_buffer(data)
            piece = flat(data).tobytes()
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

    _DIGEST_REFUSED = "digest() method cannot be called"

    def _pre_encrypt(self, plaintext: Any) -> None:
        self._step(
            Method.ENCRYPT,
            (Method.ENCRYPT, Method.DIGEST),
            "encrypt() method cannot be called",
        )

    def _pre_decrypt(self, ciphertext: Any) -> None:
        self._step(
            Method.DECRYPT,
            (Method.DECRYPT, Method.VERIFY),
            "decrypt() method cannot be called",
        )

    def encrypt_and_digest(self, plaintext: Buffer) -> tuple[bytes, bytes]:
        """Perform :meth:`encrypt` and :meth:`digest` in one step."""
        ct = self.encrypt(plaintext)
        assert ct is not None
        return ct, self.digest()

    def decrypt_and_verify(self, ciphertext: Buffer, received_mac_tag: Buffer) -> bytes:
        """Perform :meth:`decrypt` and :meth:`verify` in one step; no plaintext on a bad tag."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            if self._dav_ok(ciphertext, received_mac_tag):
                self._pre_decrypt(ciphertext)
                result, out, _ = self._out_view(ciphertext, None)
                ok = self._dav_run(ciphertext, received_mac_tag, out)
                self._pre_verify()
                if not ok:
                    raise ValueError("MAC check failed")
                assert result is not None
                return bytes(result)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        plaintext = self.decrypt(ciphertext)
        assert plaintext is not None
        self.verify(received_mac_tag)
        return plaintext


def _pycryptodome_cipher(real: Any, key: bytes, nonce: bytes) -> Any:
    """PyCryptodome's cipher object for key and nonce, made as its new() makes it (not real.new: install()
    replaces that): its class takes the 12-byte ChaCha20 nonce, so an 8-byte nonce is prefixed by 4 zero
    bytes and a 24-byte one (XChaCha20) goes through HChaCha20 first (RFC 8439 2.6, draft-irtf-cfrg-xchacha)."""
    if len(nonce) == 8:
        cipher = real.ChaCha20Poly1305Cipher(key, b"\x00\x00\x00\x00" + nonce)
    elif len(nonce) == 24:
        from Crypto.Cipher.ChaCha20 import _HChaCha20

        cipher = real.ChaCha20Poly1305Cipher(_HChaCha20(key, nonce[:16]), b"\x00\x00\x00\x00" + nonce[16:])
    else:
        cipher = real.ChaCha20Poly1305Cipher(key, nonce)
    cipher.nonce = nonce
    return cipher


@as_builtin()
def new(*, key: Buffer, nonce: Optional[Buffer] = None) -> Any:
    """Create a new ChaCha20-Poly1305 or XChaCha20-Poly1305 AEAD cipher computed by the kernel.

    :keyword key: The secret key to use. It must be 32 bytes long.
    :keyword nonce: 8 or 12 bytes (ChaCha20-Poly1305; 8 is prefixed by 4 zero bytes, RFC 8439 2.6), or
        24 bytes (XChaCha20-Poly1305). If not provided, 12 random bytes (see the ``nonce`` attribute).
    :Return: a ChaCha20Poly1305Cipher object
    """
    if len(key) != 32:
        raise ValueError("Key must be 32 bytes long")

    if nonce is None:
        from ._mode_gcm import _random

        nonce = _random(12)

    if len(nonce) not in (8, 12, 24):
        raise ValueError("Nonce must be 8, 12 or 24 bytes long")
    if len(nonce) == 24:
        flat(nonce)  # PyCryptodome's HChaCha20 takes it as C data first: its TypeError / BufferError

    if not is_buffer(nonce):
        raise TypeError("nonce must be bytes, bytearray or memoryview")
    if nbytes(nonce) != len(nonce):  # items wider than a byte: PyCryptodome's C code is told len() bytes
        raise ValueError("Error 7 instantiating a ChaCha20 cipher")
    c_buffer(key)

    key, nonce = flat(key).tobytes(), bytes(nonce)
    if len(nonce) == 24:
        needs = (("skcipher", "xchacha20"), ("hash", "poly1305"))
        name = "XChaCha20-Poly1305"
    else:
        needs = (("aead", "rfc7539(chacha20,poly1305)"), ("skcipher", "chacha20"))
        name = "rfc7539(chacha20,poly1305)"
    for alg_type, alg_name in needs:
        why = _core.probe(alg_type, alg_name)
        if why is not None:
            make = functools.partial(_pycryptodome_cipher, key=key, nonce=nonce)
            return pycryptodome_fallback(name, why, "Crypto.Cipher.ChaCha20_Poly1305", make)
    return ChaCha20Poly1305Cipher(bytes(key), bytes(nonce))


# Size of a key (in bytes)
key_size: int = 32
