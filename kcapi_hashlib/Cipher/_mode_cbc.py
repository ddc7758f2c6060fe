"""Cipher-Block Chaining (CBC) on the kernel's cbc(<cipher>): PyCryptodome's CbcMode.

The chaining value lives in userspace between calls (the last ciphertext block) and goes to the kernel as the
IV of every message, so no call depends on IV state an op socket kept (cbc does chain ctx->iv across recvs,
but pooled op sockets serve many objects). One call of up to max_message() bytes is one sendmsg + one recv.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

from .._afalg import Tfm, max_message
from ._common import Buffer, OneWay, Writable, c_buffer, io_views, kernel, pop_iv, run_blocks
from ._state_machine import Method

__all__ = ["CbcMode"]


class CbcMode(OneWay):
    """*Cipher-Block Chaining (CBC)*, NIST SP 800-38A section 6.2.

    Thread-safe (calls are serialized by the object's lock). A call that stops part-way leaves the chaining
    value unknown: every later call raises InterruptedCipherError."""

    def __init__(self, alg: Tfm, iv: bytes) -> None:
        self._alg = alg
        self.block_size = len(iv)
        """The block size of the underlying cipher, in bytes."""
        self.iv = iv
        """The Initialization Vector originally used to create the object. The value does not change."""
        self.IV = self.iv
        """Alias for `iv`"""
        self._chain = iv
        self._next: tuple[Method, ...] = (Method.ENCRYPT, Method.DECRYPT)
        self._init_lock()

    def _run(self, encrypt: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        """Whole blocks, continuing the chain of earlier calls."""
        src, dst = io_views(data, output, quirk=not encrypt)
        bs = self.block_size
        if len(src) % bs:
            raise ValueError(f"Data must be padded to {bs} byte boundary in CBC mode")
        n = len(src)
        if not n:
            return None if dst is not None else b""
        if encrypt:

            def next_iv(s: memoryview, out: memoryview, end: int) -> bytes:
                return out[end - bs : end].tobytes()  # the last ciphertext block so far

            self._broken = "encrypt"
            result = run_blocks(self._alg, True, self._chain, src, dst, next_iv)
            self._chain = bytes((result if result is not None else dst)[-bs:])  # type: ignore[index]
            self._broken = None
            return result
        # Decrypting, the chaining values are input blocks: read them before the kernel writes any output,
        # since output may be the input buffer itself (in-place decryption).
        step = max_message()
        saved = {end: src[end - bs : end].tobytes() for end in range(step, n, step)}
        chain = src[-bs:].tobytes()

        def saved_iv(s: memoryview, out: memoryview, end: int) -> bytes:
            return saved[end]

        self._broken = "decrypt"
        result = run_blocks(self._alg, False, self._chain, src, dst, saved_iv)
        self._chain = chain
        self._broken = None
        return result


def _create_cbc_cipher(factory: ModuleType, **kwargs: Any) -> CbcMode:
    """PyCryptodome's factory: iv/IV (random if absent), key checked by the cipher module."""
    key = factory._create_base_cipher(kwargs)
    iv = pop_iv(factory, kwargs)

    if kwargs:
        raise TypeError(f"Unknown parameters for CBC: {kwargs!s}")

    iv = c_buffer(iv).tobytes()
    return CbcMode(kernel(f"cbc({factory._KERNEL})", key, f"{factory._NAME}-CBC"), iv)
