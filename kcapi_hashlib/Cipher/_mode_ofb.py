"""Output Feedback (OFB) mode, composed from the kernel's cbc(<cipher>): PyCryptodome's OfbMode.

The kernel's ofb(<cipher>) is gone from Linux 6.7 on, so OFB is composed the same way on every kernel. The
OFB key stream is O_j = CIPH_K(O_{j-1}) with O_0 = IV (NIST SP 800-38A section 6.4), which is exactly CBC
encryption of zero blocks: X_j = CIPH_K(0 XOR X_{j-1}). So the kernel's cbc(<cipher>) makes the key stream,
one message per call (per max_message()), with the last key-stream block as the IV of the next; the data is
XORed with it here. A partly used key-stream block is kept for the next call (any split works).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional, Union

from .._afalg import Tfm
from .._afalg import skcipher as _sk
from ._common import Buffer, OneWay, Writable, c_buffer, finish, io_views, kernel, new_output, pop_iv, xor_into, zeros
from ._state_machine import Method

__all__ = ["OfbMode"]


class OfbMode(OneWay):
    """*Output FeedBack (OFB)*, NIST SP 800-38A section 6.4.

    Thread-safe (calls are serialized by the object's lock). A call that stops part-way leaves the key
    stream position unknown: every later call raises InterruptedCipherError."""

    def __init__(self, alg: Tfm, iv: bytes) -> None:
        self._alg = alg
        self.block_size = len(iv)
        """The block size of the underlying cipher, in bytes."""
        self.iv = iv
        """The Initialization Vector originally used to create the object. The value does not change."""
        self.IV = self.iv
        """Alias for `iv`"""
        self._last = iv  # the last key-stream block made (O_0 = IV)
        self._left = b""  # its bytes not used yet
        self._next: tuple[Method, ...] = (Method.ENCRYPT, Method.DECRYPT)
        self._init_lock()

    def _run(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        """Data of any length, continuing the key stream of earlier calls."""
        src, dst = io_views(data, output, quirk=not encrypting)
        n = len(src)
        if n == 0:
            return b"" if dst is None else None
        obj: Optional[Union[bytes, bytearray]] = None
        if dst is None:
            obj, dst = new_output(n)
        self._broken = "encrypt" if encrypting else "decrypt"
        self._xor_stream(src, dst)
        self._broken = None
        return finish(obj) if obj is not None else None

    def _xor_stream(self, src: memoryview, dst: memoryview) -> None:
        n, b = len(src), self.block_size
        done = min(len(self._left), n)
        if done:
            xor_into(dst[:done], src[:done], self._left[:done])
            self._left = self._left[done:]
        limit = _sk.max_message() // b * b
        while done < n:
            take = min(n - done, limit)
            size = -(-take // b) * b
            stream = _sk.message_bytes(self._alg, True, self._last, (zeros(size),))
            xor_into(dst[done : done + take], src[done : done + take], stream[:take])
            self._last = stream[-b:]
            self._left = stream[take:]
            done += take


def _create_ofb_cipher(factory: ModuleType, **kwargs: Any) -> OfbMode:
    """PyCryptodome's factory: iv/IV (random if absent)."""
    key = factory._create_base_cipher(kwargs)
    iv = pop_iv(factory, kwargs)

    if kwargs:
        raise TypeError(f"Unknown parameters for OFB: {kwargs!s}")

    iv = c_buffer(iv).tobytes()
    return OfbMode(kernel(f"cbc({factory._KERNEL})", key, f"{factory._NAME}-OFB"), iv)
