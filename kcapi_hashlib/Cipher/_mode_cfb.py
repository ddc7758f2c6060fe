"""Cipher Feedback (CFB) mode, composed from the kernel's block operations: PyCryptodome's CfbMode.

The kernel's cfb(<cipher>) is gone from Linux 6.7 on (and only ever did full-block segments), so CFB is
composed on every kernel, the same way everywhere, with every block encipherment done by the kernel and only
the XOR of data with the key stream done here (NIST SP 800-38A section 6.3: for segment j, the key stream
O_j = CIPH_K(I_j) and C_j = P_j XOR MSB_s(O_j), I_j being the last b bits of IV || C_1 .. C_{j-1}):

- Decryption, any segment size: the inputs I_j are all known (they are ciphertext), so one ecb(<cipher>)
  message enciphers all of them at once. For s = block size they are IV || C_1 .. C_{n-1}, sent as they lie
  in memory; for shorter segments, the overlapping windows are copied side by side (b/s times the data).
- Encryption, s = block size (CFB-128 for AES): cbc(<cipher>) computes the key stream. CBC enciphers
  X_i = CIPH_K(Q_i XOR X_{i-1}) with X_0 = IV; with IV = I_1 and Q = 0, P_1, .., P_{n-1}, X_1 = CIPH_K(I_1) =
  O_1 and X_{i+1} = CIPH_K(P_i XOR O_i) = CIPH_K(C_i) = O_{i+1}. One message per call (per max_message()).
- Encryption, s < block size (CFB-8, PyCryptodome's default): every segment needs the previous one's
  ciphertext, and no kernel mode chains on s-bit shifts, so each segment is one ecb(<cipher>) message:
  2 syscalls per segment (per byte for CFB-8). Correct, and slow: prefer CFB-128, CTR or GCM.

Segments may be split across calls at any byte: the key stream of a partial segment is kept here.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional, Union

from .._afalg import Tfm
from .._afalg import core as _core
from .._afalg import skcipher as _sk
from ._common import (
    Buffer,
    OneWay,
    Unavailable,
    Writable,
    c_backend,
    c_buffer,
    finish,
    io_views,
    kernel,
    new_output,
    pop_iv,
    size_t_error,
    xor_into,
    zeros,
)
from ._state_machine import Method

__all__ = ["CfbMode"]


class CfbMode(OneWay):
    """*Cipher FeedBack (CFB)*, NIST SP 800-38A section 6.3, with segments of `segment_size` bytes.

    Thread-safe (calls are serialized by the object's lock). A call that stops part-way leaves the shift
    register unknown: every later call raises InterruptedCipherError."""

    def __init__(self, key: bytes, factory: ModuleType, iv: bytes, segment_size: int) -> None:
        self._key = key
        self._factory = factory
        self._ecb: Optional[Tfm] = None
        self._cbc: Optional[Tfm] = None
        self.block_size = len(iv)
        """The block size of the underlying cipher, in bytes."""
        self.iv = iv
        """The Initialization Vector originally used to create the object. The value does not change."""
        self.IV = self.iv
        """Alias for `iv`"""
        self._s = segment_size
        self._register = iv  # I_j of the current segment: the last b bits of IV || C so far (whole segments)
        self._stream = b""  # O_j[:s] of the current, partly used segment
        self._used = 0  # bytes of the current segment done
        self._partial = b""  # its ciphertext so far
        self._next: tuple[Method, ...] = (Method.ENCRYPT, Method.DECRYPT)
        self._init_lock()

    def _tfm(self, mode: str) -> Tfm:
        f = self._factory
        t = kernel(f"{mode}({f._KERNEL})", self._key, f"{f._NAME}-CFB")
        if mode == "ecb":
            self._ecb = t
        else:
            self._cbc = t
        return t

    def _run(self, encrypt: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        """Data of any length, continuing earlier calls."""
        src, dst = io_views(data, output, quirk=not encrypt)
        n = len(src)
        if n == 0:
            return b"" if dst is None else None
        obj: Optional[Union[bytes, bytearray]] = None
        if dst is None:
            obj, dst = new_output(n)
        self._broken = "encrypt" if encrypt else "decrypt"
        self._segments(encrypt, src, dst)
        self._broken = None
        return finish(obj) if obj is not None else None

    def _segments(self, encrypt: bool, src: memoryview, dst: memoryview) -> None:
        s, n, done = self._s, len(src), 0
        if self._used:  # finish the segment an earlier call began
            take = min(s - self._used, n)
            ct = src[:take].tobytes() if not encrypt else None  # read before dst (may be src) is written
            xor_into(dst[:take], src[:take], self._stream[self._used : self._used + take])
            self._segment_bytes(ct if ct is not None else dst[:take].tobytes(), take)
            done = take
        limit = _sk.max_message()
        while done < n:
            if encrypt and s < self.block_size:
                done += self._encrypt_segment(src[done:], dst[done:])
                continue
            # Whole segments of this chunk (plus a partial last one), at most `limit` bytes of kernel input.
            segments = min(-(-(n - done) // s), limit // self.block_size)
            take = min(n - done, segments * s)
            if encrypt:
                stream = self._stream_cbc(src[done : done + take], segments)
            else:
                stream = self._stream_ecb(src[done : done + take], segments)
            ct = src[done : done + take].tobytes() if not encrypt else None
            xor_into(dst[done : done + take], src[done : done + take], stream[:take])
            self._advance(ct if ct is not None else dst[done : done + take].tobytes(), stream, segments, take)
            done += take

    def _stream_cbc(self, plain: memoryview, segments: int) -> bytes:
        """Key stream of `segments` full-block segments from the plaintext (encryption, s = b): CBC of
        0, P_1 .. P_{segments-1} with IV = the current register."""
        alg = self._cbc or self._tfm("cbc")
        b = self.block_size
        body = plain[: (segments - 1) * b]
        return _sk.message_bytes(alg, True, self._register, (zeros(b), body))

    def _stream_ecb(self, cipher: memoryview, segments: int) -> bytes:
        """Key stream of `segments` segments from the ciphertext (decryption): ECB of the input blocks."""
        alg = self._ecb or self._tfm("ecb")
        s, b = self._s, self.block_size
        if s == b:
            stream = _sk.message_bytes(alg, True, None, (self._register, cipher[: (segments - 1) * b]))
            return stream
        history = self._register + cipher[: (segments - 1) * s].tobytes()
        windows = b"".join(history[j * s : j * s + b] for j in range(segments))
        out = _sk.message_bytes(alg, True, None, (windows,))
        return b"".join(out[j * b : j * b + s] for j in range(segments))

    def _encrypt_segment(self, src: memoryview, dst: memoryview) -> int:
        """One segment (s < b) of encryption: one ecb message for O_j, then C_j = P_j XOR MSB_s(O_j)."""
        alg = self._ecb or self._tfm("ecb")
        s = self._s
        stream = _sk.message_bytes(alg, True, None, (self._register,))[:s]
        take = min(s, len(src))
        xor_into(dst[:take], src[:take], stream[:take])
        ct = dst[:take].tobytes()
        if take == s:
            self._register = self._register[s:] + ct
        else:
            self._stream, self._used, self._partial = stream, take, ct
        return take

    def _segment_bytes(self, ct: bytes, take: int) -> None:
        """Account `take` more bytes (ciphertext `ct`) of the current partial segment."""
        self._partial += ct
        self._used += take
        if self._used == self._s:
            self._register = (self._register + self._partial)[-self.block_size :]
            self._stream, self._used, self._partial = b"", 0, b""

    def _advance(self, ct: bytes, stream: bytes, segments: int, take: int) -> None:
        """After `segments` segments were processed (the last one partly when take < segments * s)."""
        s, b = self._s, self.block_size
        whole = take // s
        self._register = (self._register + ct[: whole * s])[-b:]
        rest = take - whole * s
        if rest:
            self._stream = stream[whole * s : whole * s + s]
            self._used, self._partial = rest, ct[whole * s :]


def _create_cfb_cipher(factory: ModuleType, **kwargs: Any) -> CfbMode:
    """PyCryptodome's factory: iv/IV (random if absent) and segment_size in bits (default 8)."""
    key = factory._create_base_cipher(kwargs)

    iv = pop_iv(factory, kwargs)

    segment_size_bytes, rem = divmod(kwargs.pop("segment_size", 8), 8)
    if segment_size_bytes == 0 or rem != 0:
        raise ValueError("'segment_size' must be positive and multiple of 8 bits")

    if kwargs:
        raise TypeError(f"Unknown parameters for CFB: {kwargs!s}")
    iv = c_buffer(iv).tobytes()
    # PyCryptodome's CFB_start_operation refuses a segment longer than the block with ERR_CFB_SEGMENT.
    segment_error = ValueError(f"Error {0x20002} while instantiating the CFB mode")
    if not isinstance(segment_size_bytes, int) or segment_size_bytes < 0:
        raise size_t_error(segment_size_bytes, lambda: segment_error)
    if segment_size_bytes >= 1 << 64 and c_backend() == "cffi":
        raise OverflowError("int too big to convert")  # cffi's size_t conversion
    if segment_size_bytes > factory.block_size:
        raise segment_error
    # The transforms are bound on first use (decryption and CFB-8 need only ecb, CFB-128 encryption cbc);
    # whether the kernel has them is known now, so that the policy applies here, as for every other mode,
    # and never an internal Unavailable from a later encrypt().
    for mode in ("ecb", "cbc"):
        why = _core.probe("skcipher", f"{mode}({factory._KERNEL})")
        if why is not None:
            raise Unavailable(f"{factory._NAME}-CFB", why)
    return CfbMode(key, factory, iv, segment_size_bytes)
