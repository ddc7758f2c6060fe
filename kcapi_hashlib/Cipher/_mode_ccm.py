"""Counter with CBC-MAC (NIST SP 800-38C, RFC 3610) on the kernel: PyCryptodome's CcmMode API over ccm(aes).

The kernel's ccm(aes) takes a 16-byte IV that is the counter block A_0 without its counter: byte 0 = L - 1
(flags, L = 15 - nonce length, so 2..8: crypto_ccm_check_iv accepts 1..7), then the nonce, zero-padded
(crypto/ccm.c format_input/crypto_ccm_init_crypt). Tag sizes 4..16 even (crypto_ccm_setauthsize), exactly
PyCryptodome's. Large messages stream: CTR on ctr(aes) from A_1 and the CBC-MAC (B_0 || encoded a || A ||
pad || P || pad) on cbc(aes) with a zero IV, chained in userspace by the last ciphertext block, tag = MSB(T)
XOR E_K(A_0) (SP 800-38C 6.1).
"""

from __future__ import annotations

import operator
import struct
from threading import get_ident
from typing import Any, Optional

from .._afalg import aead as _k
from .._afalg import core as _core
from ._aead import (
    _CHUNK,
    Buffer,
    Mac,
    Native,
    NistAeadCipher,
    Writable,
    c_buffer,
    too_long,
    xor16,
)
from ._common import Unavailable, nbytes, zeros
from ._state_machine import ALL, Method

__all__ = ["CcmMode"]


def _start_mac_checks(mac_len: Any, msg_len: Any, assoc_len: Any) -> None:
    """What PyCryptodome's _start_mac computes from the three lengths, in its order, for its errors (a TypeError
    for a float mac_len, a str or float length, ...)."""
    _ = (assoc_len > 0) << 6 | ((mac_len - 2) // 2) << 3
    _nbytes(msg_len)
    if assoc_len > 0:
        _nbytes(assoc_len)


def _nbytes(n: int) -> int:
    """len(Crypto.Util.number.long_to_bytes(n)), with its errors: TypeError for what is not an integer
    (operator.index), ValueError for a negative one."""
    n = operator.index(n)
    if n < 0:
        raise ValueError("Values must be non-negative")
    return max(1, (n.bit_length() + 7) // 8)


class _CbcMac(Mac):
    """CBC-MAC on cbc(aes) in operations of up to _CHUNK bytes; only the last block of each is kept."""

    def __init__(self, mode: CcmMode) -> None:
        self._mode = mode
        q = 15 - len(mode.nonce)
        assert mode._assoc_len is not None and mode._msg_len is not None
        flags = (mode._assoc_len > 0) << 6 | ((mode._mac_len - 2) // 2) << 3 | (q - 1)
        self._b0 = struct.pack("B", flags) + mode.nonce + mode._msg_len.to_bytes(q, "big")
        self._iv = bytes(16)
        self._buf = bytearray(self._b0)
        self._scratch = bytearray(_CHUNK)

    def _run(self, final: bool) -> None:
        whole = len(self._buf) if final else len(self._buf) // _CHUNK * _CHUNK
        view = memoryview(self._buf)
        pos = 0
        while pos < whole:
            take = min(_CHUNK, whole - pos)
            out = memoryview(self._scratch)[:take]
            m = self._mode
            _k.stream_once(f"cbc({m._kname})", m._key, self._iv, [view[pos : pos + take]], [out])
            self._iv = bytes(out[take - 16 :])
            pos += take
        view.release()
        del self._buf[:whole]

    def aad(self, data: Buffer) -> None:
        a = len(data)
        if a:
            if a < 2**16 - 2**8:
                enc = a.to_bytes(2, "big")
            elif a < 2**32:
                enc = b"\xff\xfe" + a.to_bytes(4, "big")
            else:
                enc = b"\xff\xff" + a.to_bytes(8, "big")
            self._buf += enc
            self._buf += data
            self._buf += bytes(-(len(enc) + a) % 16)
        self._run(False)

    def data(self, data: Buffer) -> None:
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self._run(False)

    def digest(self) -> bytes:
        self._buf += bytes(-len(self._buf) % 16)
        if self._buf:
            self._run(True)
        return xor16(self._iv, self._mode._s0())


class CcmMode(NistAeadCipher):
    """Counter with CBC-MAC (CCM), computed by the kernel. See PyCryptodome's CcmMode: encrypt() or decrypt()
    once, unless msg_len was declared."""

    _MAC_PLAINTEXT = True

    def __init__(
        self,
        factory: Any,
        key: Buffer,
        nonce: Buffer,
        mac_len: int,
        msg_len: Optional[int],
        assoc_len: Optional[int],
        cipher_params: dict[str, Any],
    ) -> None:
        self.block_size = factory.block_size
        """The block size of the underlying cipher, in bytes."""

        self.nonce = bytes(nonce)
        """The nonce originally used to create the object."""

        self._factory = factory
        bytes(key)  # PyCryptodome copies the key first (its errors for a str); its ECB/CBC checks the original
        self._kname = factory._KERNEL
        self._msg_len = msg_len
        self._assoc_len = assoc_len

        if self.block_size != 16:
            raise ValueError("CCM mode is only available for ciphers that operate on 128 bits blocks")

        # MAC tag length (Tlen)
        if mac_len not in (4, 6, 8, 10, 12, 14, 16):
            # PyCryptodome's %d: a TypeError for a value that is not a number, as there
            raise ValueError("Parameter 'mac_len' must be even and in the range 4..16 (not %d)" % mac_len)  # noqa: UP031

        # Nonce value
        if not (7 <= len(nonce) <= 13):
            raise ValueError("Length of parameter 'nonce' must be in the range 7..13 bytes")

        # Message length (if known already)
        q = 15 - len(self.nonce)  # length of Q, the encoded message length
        if msg_len and _nbytes(msg_len) > q:
            too_long(f"Message too long for a {len(self.nonce)}-byte nonce")

        # PyCryptodome builds a CBC cipher here (the MAC): the same key and parameter checks, in that order.
        params = dict(cipher_params)
        params["key"] = key
        key = factory._create_base_cipher(params)
        if params:
            raise TypeError(f"Unknown parameters for CBC: {params}")

        if assoc_len is not None and msg_len is not None:
            _start_mac_checks(mac_len, msg_len, assoc_len)  # PyCryptodome starts its MAC here
        self._setup(bytes(key), mac_len)
        self._next = list(ALL)
        self._cumul_assoc_len = 0
        self._cumul_msg_len = 0
        self._ctr0 = struct.pack("B", q - 1) + self.nonce  # A_i = flags || N || [i]_q
        self._nat = Native(f"ccm({self._kname})", mac_len, self._ctr0 + bytes(q), True)

    # --- kernel plumbing ---

    def _native(self) -> Optional[Native]:
        return self._nat

    def _xor(self, data: Buffer, offset: int, out: memoryview) -> None:
        q = 15 - len(self.nonce)
        prefix = self._ctr0

        def iv_at(block: int) -> bytes:
            return prefix + (block + 1).to_bytes(q, "big")

        self._stream_xor(f"ctr({self._kname})", 16, iv_at, data, offset, out)

    def _s0(self) -> bytes:
        """S_0 = E_K(A_0): the key-stream block before the message's first."""
        out = bytearray(16)
        self._xor(zeros(16), -16, memoryview(out))
        return bytes(out)

    def _new_mac(self) -> Mac:
        why = _core.probe("skcipher", f"cbc({self._kname})")
        if why is not None:
            raise why
        return _CbcMac(self)

    def _aad_joined(self) -> bytes:
        # PyCryptodome joins the parked AAD here, after B_0 and the encoded length: a str piece fails the same
        # way (and is named by the same index).
        return b"".join([b"", b"", *self._aad])

    # --- PyCryptodome's API ---

    def update(self, assoc_data: Buffer) -> CcmMode:
        """Protect associated data (see PyCryptodome's CcmMode.update)."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            if Method.UPDATE not in self._next:
                raise TypeError("update() can only be called immediately after initialization")

            self._next = [Method.UPDATE, Method.ENCRYPT, Method.DECRYPT, Method.DIGEST, Method.VERIFY]

            # Parked as PyCryptodome does; a buffer (of any item type: its bytes are what is joined) as its
            # bytes, counted in bytes; anything else as it is, to fail when joined (len() may fail first).
            try:
                view: Optional[memoryview] = memoryview(assoc_data)
            except TypeError:
                view = None
            if view is not None and view.c_contiguous:
                piece: Any = view.tobytes()
                n = len(piece)
            else:
                n = len(assoc_data)
                piece = assoc_data
            self._broken = "update"
            self._cumul_assoc_len += n
            if self._assoc_len is not None and self._cumul_assoc_len > self._assoc_len:
                self._broken = None
                too_long("Associated data longer than declared")
            self._aad.append(piece)
            self._aad_len += n
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

    def _begin(self, data: Any, encrypting: bool) -> None:
        """The length bookkeeping PyCryptodome's encrypt()/decrypt() do before processing."""
        # No more associated data allowed from now
        n = nbytes(data)
        if self._assoc_len is None:
            self._assoc_len = sum(nbytes(x) for x in self._aad)
        elif self._cumul_assoc_len < self._assoc_len:
            raise ValueError("Associated data is too short")
        # Only once piece of plaintext accepted if message length was not declared in advance
        if self._msg_len is None:
            q = 15 - len(self.nonce)
            if _nbytes(n) > q:
                too_long(f"Message too long for a {len(self.nonce)}-byte nonce")
            self._msg_len = n
            self._next = [Method.DIGEST] if encrypting else [Method.VERIFY]
        # Both lengths are known now: PyCryptodome starts its MAC, encoding them.
        _start_mac_checks(self._mac_len, self._msg_len, self._assoc_len)
        self._aad = [self._aad_joined()] if self._aad else []
        if self._cumul_msg_len + n > self._msg_len:
            self._cumul_msg_len += n
            msg = "Message longer than declared for (%d bytes vs %d bytes" % (self._cumul_msg_len, self._msg_len)  # noqa: UP031
            too_long(msg)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            self._cumul_msg_len += n
            if isinstance(data, str) and encrypting:  # PyCryptodome MACs the plaintext first (bytes(...))
                raise TypeError("string argument without an encoding")
            c_buffer(data)
        # From here the message state changes with the data: _process clears the mark when it is whole.
        self._broken = "encrypt" if encrypting else "decrypt"
        self._cumul_msg_len += n

    def _pre_encrypt(self, plaintext: Any) -> None:
        self._step(
            Method.ENCRYPT,
            (Method.ENCRYPT, Method.DIGEST),
            "encrypt() can only be called after initialization or an update()",
        )
        self._begin(plaintext, True)

    def _pre_decrypt(self, ciphertext: Any) -> None:
        self._step(
            Method.DECRYPT,
            (Method.DECRYPT, Method.VERIFY),
            "decrypt() can only be called after initialization or an update()",
        )
        self._begin(ciphertext, False)

    def _crypt(self, data: Any, output: Optional[Writable], encrypting: bool) -> Optional[bytes]:
        """_process after _begin marked the object: the buffer checks of _process raise before it changes
        anything, so they clear the mark (PyCryptodome's object stays as usable as it was); any other exit
        leaves it set."""
        try:
            from ._common import io_views

            io_views(data, output)
        except (TypeError, ValueError, BufferError):
            self._broken = None
            raise
        result = self._process(data, output, encrypting)
        self._broken = None
        return result

    def _digest(self) -> bytes:
        if self._tag is not None:
            return self._tag
        if self._assoc_len is None:
            self._assoc_len = sum(nbytes(x) for x in self._aad)
        elif self._cumul_assoc_len < self._assoc_len:
            raise ValueError("Associated data is too short")
        self._aad = [self._aad_joined()] if self._aad else []
        if self._msg_len is None:
            self._msg_len = 0
        if self._cumul_msg_len != self._msg_len:
            raise ValueError("Message is too short")
        return self._final_tag()

    def _dav_ok(self, ciphertext: Any, received_mac_tag: Any) -> bool:
        # ... and a declared message length that this ciphertext is.
        return super()._dav_ok(ciphertext, received_mac_tag) and self._msg_len in (None, nbytes(ciphertext))


def _create_ccm_cipher(factory: Any, **kwargs: Any) -> Any:
    """Create a new block cipher, configured in CCM mode.

    Keyword Args: key, nonce (7..13 bytes; 11 random bytes if absent), mac_len (4..16 even, default 16),
    msg_len, assoc_len. See PyCryptodome's _create_ccm_cipher.
    """
    try:
        key = kwargs.pop("key")
    except KeyError as e:
        raise TypeError("Missing parameter: " + str(e)) from None

    nonce = kwargs.pop("nonce", None)  # N
    if nonce is None:
        from ._mode_gcm import _random

        nonce = _random(11)
    mac_len = kwargs.pop("mac_len", factory.block_size)
    msg_len = kwargs.pop("msg_len", None)  # p
    assoc_len = kwargs.pop("assoc_len", None)  # a
    cipher_params = dict(kwargs)

    kernel = factory._KERNEL
    why = _core.probe("aead", f"ccm({kernel})") or _core.probe("skcipher", f"ctr({kernel})")
    if why is not None:
        raise Unavailable(f"{factory._NAME}-CCM", why)  # the dispatcher applies the policy
    return CcmMode(factory, key, nonce, mac_len, msg_len, assoc_len, cipher_params)
