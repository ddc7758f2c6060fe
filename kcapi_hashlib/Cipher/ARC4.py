"""ARC4 (RC4) on the kernel's ecb(arc4): a drop-in for PyCryptodome's Crypto.Cipher.ARC4.

Each cipher object owns its key stream in the kernel: a private tfm and one op socket kept open for the object's
life (kcapi_hashlib._afalg.skcipher.Stream explains why both are needed, on kernels before and after 6.5). So
no two objects ever share a key stream, even with the same key, and encrypt() and decrypt() (the same operation)
continue one stream, as in PyCryptodome. `drop` discards that many key stream bytes first.

Where the kernel has no ecb(arc4) (Debian's 7.3 builds none; CONFIG_CRYPTO_USER_API_ENABLE_OBSOLETE), the policy
decides: strict raises UnsupportedAlgorithm, fallback returns PyCryptodome's ARC4 object, counted.

Thread-safe (calls are serialized by the object's lock). A call that stops part-way (an exception from a
signal handler, KeyboardInterrupt) leaves the kernel's stream position unknown: every later call raises
InterruptedCipherError rather than return output from a key stream that could be out of step. After fork the
child's object continues from its own copy of the state (PyCryptodome's semantics); the parent's is untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from threading import get_ident
from typing import Any, Union

from .._afalg import AlgUnavailable, Stream
from .._callable import as_builtin
from ._common import Stateful, c_buffer, finish, key_bytes, new_output, pycryptodome_fallback, real_module
from ._legacy import check_length

Buffer = Union[bytes, bytearray, memoryview]

#: Size of a data block (in bytes)
block_size: int = 1
#: Size of a key (in bytes)
key_size: Iterable[int] = range(1, 256 + 1)

_NAME = "ARC4"
_KERNEL = "ecb(arc4)"
_PYCRYPTODOME = "Crypto.Cipher.ARC4"


class ARC4Cipher(Stateful):
    """ARC4 cipher object. Do not create it directly: use new()."""

    def __init__(self, stream: Stream, key_len: int) -> None:
        self._stream = stream
        self.block_size = 1
        self.key_size = key_len
        self._init_lock()

    def encrypt(self, plaintext: Buffer) -> bytes:
        """Encrypt a piece of data of any size (continuing the key stream).

        :returns: the encrypted byte string, of equal length as the plaintext."""
        return self._crypt(plaintext, "encrypt")

    def decrypt(self, ciphertext: Buffer) -> bytes:
        """Decrypt a piece of data of any size (the same operation as encrypt()).

        :returns: the decrypted byte string, of equal length as the ciphertext."""
        return self._crypt(ciphertext, "decrypt")

    def _crypt(self, data: Buffer, method: str) -> bytes:
        # PyCryptodome's order: the output is sized with len(data), then the C code sees the bytes.
        n = len(data)
        src = c_buffer(data)
        if src.nbytes != n:
            raise ValueError(f"The plaintext changed length while being {method}ed")
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            out, view = new_output(n)
            if n:
                self._broken = method
                self._stream.crypt(src, view)
                self._broken = None
            return finish(out)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned


def _unavailable(key: bytes, drop: int, reason: object) -> Any:
    def make(real: Any) -> Any:
        return real.new(key, drop)

    return pycryptodome_fallback(_NAME, reason, real_module(_PYCRYPTODOME), make)


@as_builtin()
def new(key: Buffer, drop: int = 0) -> Any:
    """Create a new ARC4 cipher, as Crypto.Cipher.ARC4.new.

    :param key: the secret key, 1 to 256 bytes (16 recommended).
    :param drop: how many bytes to discard from the start of the key stream (3072 recommended; default 0)."""
    check_length(key, _NAME, key_size)
    raw = key_bytes(key)
    try:
        stream = Stream(_KERNEL, raw)
    except AlgUnavailable as e:
        return _unavailable(raw, drop, e)
    cipher = ARC4Cipher(stream, len(key))
    if drop > 0:
        cipher.encrypt(b"\x00" * drop)
    return cipher


__all__ = ["new", "block_size", "key_size", "ARC4Cipher"]
_REPLACES = ["new"]
