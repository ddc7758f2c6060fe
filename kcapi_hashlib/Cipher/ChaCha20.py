"""ChaCha20 and XChaCha20 on the kernel: a drop-in for PyCryptodome's Crypto.Cipher.ChaCha20.

The kernel's "chacha20" (crypto/chacha_generic.c and its arch drivers) takes a 16-byte IV that is state
words 12..15 (chacha_init): a 32-bit little-endian block counter and the 12-byte nonce of RFC 8439; for the
original 8-byte nonce, words 12..13 are the 64-bit counter and 14..15 the nonce. "xchacha20" takes the
24-byte nonce followed by the 64-bit stream position (crypto_xchacha_crypt derives the subkey with HChaCha20).

- The kernel increments only word 12 (chacha_block_generic: state[12]++), and chacha20 does not chain its IV
  across requests; so every message carries the IV of its first block, starts on a 64-byte block boundary
  (the bytes before the position are zeros sent to scratch space) and, for 8-byte nonces, ends where word 12
  would wrap, the next message carrying the incremented word 13 (PyCryptodome's 64-bit counter).
- Key stream limits as PyCryptodome: 2**32 blocks for 12- and 24-byte nonces (MessageTooLongError), 2**64
  blocks for 8-byte ones; seek() with its checks and messages.
"""

from __future__ import annotations

from threading import get_ident
from typing import Any, Optional

from .._afalg import Tfm
from .._callable import as_builtin
from . import _keystream
from ._common import (
    Buffer,
    OneWay,
    Unavailable,
    Writable,
    c_buffer,
    io_views,
    kernel,
    size_t_error,
    too_long,
)
from ._state_machine import Method

_BLOCK = 64


class ChaCha20Cipher(OneWay):
    """ChaCha20 (or XChaCha20) cipher object. Do not create it directly: use new().

    Thread-safe: each call reserves its key-stream range under the object's lock before any kernel work;
    an exception after that leaves the range consumed, so no later call reuses that key stream."""

    block_size: int = 1

    def __init__(self, alg: Tfm, nonce: bytes) -> None:
        self.nonce = nonce
        self._alg = alg
        if len(nonce) == 24:
            self._name = "XChaCha20"
            self._blocks = 1 << 32
        else:
            self._name = "ChaCha20"
            self._blocks = 1 << 64 if len(nonce) == 8 else 1 << 32
        self._position = 0
        self._next: tuple[Method, ...] = (Method.ENCRYPT, Method.DECRYPT)
        self._init_lock()

    _AFTER_DECRYPT = "Cipher object can only be used for decryption"
    _AFTER_ENCRYPT = "Cipher object can only be used for encryption"

    def _crypt(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        """A piece of data of any size, continuing the key stream of earlier calls."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._one_way(encrypting)
            src, dst, start = self._reserve(data, output)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        return _keystream.crypt(self._alg, src, dst, start, _BLOCK, self._iv, self._boundary)

    def _reserve(self, data: object, output: object) -> tuple[memoryview, Optional[memoryview], int]:
        """Check the buffers and take their length of key stream (caller holds the lock)."""
        src, dst = io_views(data, output)
        start = self._position
        if start + src.nbytes > self._blocks * _BLOCK:
            too_long(f"The key stream of {self._name} is exhausted for this nonce")
        self._position = start + src.nbytes
        return src, dst, start

    def _iv(self, block: int) -> bytes:
        nonce = self.nonce
        if len(nonce) == 12:
            return block.to_bytes(4, "little") + nonce
        if len(nonce) == 8:
            return block.to_bytes(8, "little") + nonce
        return nonce + block.to_bytes(8, "little")

    def _boundary(self, block: int) -> Optional[int]:
        if len(self.nonce) != 8:
            return None  # the counter never reaches word 13 within the 2**32-block limit
        return (block >> 32) + 1 << 32  # word 12 wraps: the next message must carry word 13 itself

    def seek(self, position: int) -> None:
        """Seek to a position (in bytes) in the key stream; seek(block_number * 64) for a block."""
        block_number, _offset = divmod(position, 64)
        _block_low = block_number & 0xFFFFFFFF  # as PyCryptodome: a float position fails here (TypeError)
        block_high = block_number >> 32
        refused = ValueError(f"Error 11 while seeking with {self._name}")  # chacha20_seek: ERR_MAX_OFFSET
        if block_high < 0:
            raise size_t_error(block_high, lambda: refused)
        if block_high > (0xFFFFFFFF if len(self.nonce) == 8 else 0):
            raise refused
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._position = position
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned


@as_builtin()
def new(*, key: Buffer, nonce: Optional[Buffer] = None, threads: int = 1) -> Any:
    """Create a new ChaCha20 or XChaCha20 cipher (as Crypto.Cipher.ChaCha20.new).

    key: 32 bytes. nonce: 8 or 12 bytes (ChaCha20), 24 (XChaCha20); 8 random bytes if absent (read them back
    from the `nonce` attribute). threads: accepted as PyCryptodome's; the kernel decides how to run.
    """
    from ..Random import get_random_bytes

    if nonce is None:
        nonce = get_random_bytes(8)

    if len(key) != 32:
        raise ValueError("ChaCha20/XChaCha20 key must be 32 bytes long")

    if len(nonce) not in (8, 12, 24):
        raise ValueError("Nonce must be 8/12 bytes(ChaCha20) or 24 bytes (XChaCha20)")

    nonce_bytes = bytes(nonce)
    if not isinstance(threads, int) or isinstance(threads, bool):
        raise TypeError("'threads' must be an integer")
    if threads < 0:
        raise ValueError("'threads' must be a non-negative integer")
    key_bytes = c_buffer(key).tobytes()
    name = "xchacha20" if len(nonce_bytes) == 24 else "chacha20"
    what = "XChaCha20" if name == "xchacha20" else "ChaCha20"
    try:
        alg = kernel(name, key_bytes, what)
    except Unavailable as e:
        from ._common import pycryptodome_fallback

        # PyCryptodome's class, not its new(): install() may have put ours there.
        return pycryptodome_fallback(
            what, e.reason, "Crypto.Cipher.ChaCha20", lambda m: m.ChaCha20Cipher(key_bytes, nonce_bytes, threads)
        )
    return ChaCha20Cipher(alg, nonce_bytes)


# Size of a data block (in bytes)
block_size: int = 1

# Size of a key (in bytes)
key_size: int = 32

__all__ = ["new", "block_size", "key_size", "ChaCha20Cipher"]
_REPLACES = ["new"]
