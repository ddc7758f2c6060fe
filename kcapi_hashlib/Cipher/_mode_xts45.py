"""XTS as PyCryptodome 4.5 defines it (AES.MODE_XTS == 16), on the kernel's xts(aes).

    c = AES.new(key, AES.MODE_XTS, tweak=tweak16)     # key: 32 or 64 bytes (two AES keys)
    ct = c.encrypt(piece1) + c.encrypt(piece2)        # ONE data unit (a disk sector, say) per object

PyCryptodome 4.5's rules (its Crypto/Cipher/_mode_xts.py and SelfTest/Cipher/test_XTS.py), messages included:
an object encrypts or decrypts one data unit, given in pieces; every piece but the last is a multiple of 16
bytes, the last one is at least 16 bytes (a partial final block is handled by ciphertext stealing inside it),
nothing may follow a piece that is not a multiple of 16 bytes, and a data unit is at most 16 MiB (2**20 blocks).
The tweak is exactly 16 bytes, given by keyword.

The kernel: crypto/xts.c computes the first tweak value T = E_K2(iv) from each request's IV (xts_init_crypt)
and does not write back the value it ends with, so a request always starts at block 0 of a data unit. A piece
(or a part of a long piece: one request carries at most max_message() bytes) that starts at block j of the
data unit is therefore sent with the IV D_K2(T * alpha**j): the kernel encrypts it back to T * alpha**j and
goes on from there. T = E_K2(tweak) and D_K2(...) are single blocks through the kernel's ecb(aes) keyed with
K2 (bound only for a piece that does not start the data unit); the multiplication by alpha**j in GF(2**128)
(IEEE 1619 section 5.2: little-endian, x**128 = x**7 + x**2 + x + 1) is arithmetic on the tweak, done here.
"""

from __future__ import annotations

from hmac import compare_digest
from threading import get_ident
from types import ModuleType
from typing import Any, Optional

from .. import _policy
from .._afalg import Tfm
from .._afalg import skcipher as _sk
from ._common import (
    Buffer,
    OneWay,
    Unavailable,
    Writable,
    c_buffer,
    finish,
    is_buffer,
    is_writeable_buffer,
    kernel,
    nbytes,
    new_output,
    too_long,
)
from ._state_machine import Method

__all__ = ["XtsMode"]

_UNIT_LIMIT = 1 << 24  # bytes in one data unit (2**20 blocks), PyCryptodome 4.5's limit
_MASK = (1 << 128) - 1


def times_alpha(t: int, power: int) -> int:
    """t * alpha**power in GF(2**128) with IEEE 1619's little-endian convention (t as int.from_bytes(.., "little")):
    shift left, and fold what passes bit 127 back in with x**128 = x**7 + x**2 + x + 1 (0x87). Up to 120 bits a
    step, so the folded value (< 2**127) never overflows again."""
    while power:
        step = min(power, 120)
        high = t >> (128 - step)
        t = ((t << step) & _MASK) ^ high ^ (high << 1) ^ (high << 2) ^ (high << 7)
        power -= step
    return t


class XtsMode(OneWay):
    """*XEX-based Tweaked-codebook mode with ciphertext Stealing (XTS)*, one data unit per object
    (PyCryptodome 4.5's XtsMode).

    Thread-safe: each call checks and reserves its range of the data unit under the object's lock, then runs
    its kernel requests outside it (a call that fails after that leaves its range used)."""

    #: The tweak of the data unit.
    tweak: bytes

    def __init__(self, alg: Tfm, key_2: bytes, block_size: int, tweak: bytes) -> None:
        self.block_size = block_size
        """The block size of the underlying cipher, in bytes."""
        self.tweak = tweak
        self._alg = alg
        self._key_2 = key_2  # the tweak key: ecb(aes) with it, only for pieces after the first
        self._done = 0  # bytes of the data unit taken by earlier calls (under the lock)
        self._ended = False  # a piece that is not a multiple of 16 bytes was the last one
        self._t0: Optional[int] = None  # E_K2(tweak), little-endian, once a later piece needed it
        self._next: tuple[Method, ...] = (Method.ENCRYPT, Method.DECRYPT)
        self._init_lock()

    def _crypt(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            self._one_way(encrypting)
            src, dst = _views(data, output)
            n = len(src)
            if n == 0:
                return b"" if dst is None else None
            if self._ended:
                raise TypeError("No more data after a piece whose length is not a multiple of 16 bytes")
            if n < 16:
                raise ValueError("Each piece of data in XTS mode must be at least 16 bytes long")
            if self._done + n > _UNIT_LIMIT:
                too_long("A data unit in XTS mode cannot be longer than 16 MiB")
            first = self._done // 16
            t0 = self._first_tweak() if first or n > _sk.max_message() else None
            self._done += n
            self._ended = n % 16 != 0
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        if dst is None:
            if n <= _sk.max_message() and not first:
                return _sk.message_bytes(self._alg, encrypting, self.tweak, (src,))
            obj, out = new_output(n)
            self._run_piece(encrypting, src, out, first, t0)
            return finish(obj)
        self._run_piece(encrypting, src, dst, first, t0)
        return None

    def _first_tweak(self) -> int:
        """T = E_K2(tweak) (caller holds the lock), through the kernel's ecb(aes)."""
        if self._t0 is None:
            t = _sk.message_bytes(self._ecb_2(), True, None, (self.tweak,))
            self._t0 = int.from_bytes(t, "little")
        return self._t0

    def _ecb_2(self) -> Tfm:
        try:
            return kernel("ecb(aes)", self._key_2, "AES-XTS")
        except Unavailable as e:
            _policy.no_fallback(
                "cipher",
                "AES-XTS",
                e.reason,
                "a data unit that goes on past one request needs the kernel's ecb(aes) for its tweak, and "
                "PyCryptodome cannot take over a data unit part-way",
            )

    def _iv_at(self, block: int, t0: Optional[int]) -> bytes:
        """The IV that makes the kernel's xts(aes) start at block `block` of the data unit."""
        if block == 0:
            return self.tweak
        assert t0 is not None
        t = times_alpha(t0, block).to_bytes(16, "little")
        return _sk.message_bytes(self._ecb_2(), False, None, (t,))

    def _run_piece(self, encrypting: bool, src: memoryview, dst: memoryview, first: int, t0: Optional[int]) -> None:
        """src (one piece, starting at block `first` of the data unit) into dst: requests of at most
        max_message() bytes (a multiple of 16), the last one keeping a partial block and the full block before
        it together (ciphertext stealing happens inside one request)."""
        limit = _sk.max_message() // 16 * 16
        n, pos = len(src), 0
        while pos < n:
            end = min(n, pos + limit)
            if 0 < n - end < 16:
                end -= 16
            _sk.message(self._alg, encrypting, self._iv_at(first + pos // 16, t0), (src[pos:end],), (dst[pos:end],))
            pos = end


def _views(data: object, output: object) -> tuple[memoryview, Optional[memoryview]]:
    """The input and output as flat byte views, with PyCryptodome 4.5's XTS checks and messages (lengths in bytes:
    a memoryview of array('I') is its bytes, as everywhere in kcapi_hashlib)."""
    dst = None
    if output is not None:
        if not is_writeable_buffer(output):
            raise TypeError("output must be a bytearray or a writeable memoryview")
        dst = c_buffer(output)
    src = c_buffer(data)
    if dst is not None and dst.nbytes != src.nbytes:
        raise ValueError(f"output must have the same length as the input ({src.nbytes} bytes)")
    return src, dst


def _create_xts_cipher(factory: ModuleType, **kwargs: Any) -> XtsMode:
    """AES.new(key, AES.MODE_XTS, tweak=...): PyCryptodome 4.5's factory, its checks in its order."""
    try:
        key = kwargs.pop("key")
    except KeyError as e:
        raise TypeError("Missing parameter:" + str(e)) from None
    try:
        tweak = kwargs.pop("tweak")
    except KeyError:
        raise TypeError("Missing 'tweak' parameter: it must identify the data unit") from None
    kwargs.pop("use_aesni", True)
    if kwargs:
        raise TypeError(f"Unknown parameters for XTS: {kwargs!s}")

    if nbytes(key) not in (32, 64):
        raise ValueError(f"Incorrect key length for AES-XTS ({nbytes(key)} bytes)")
    key_b = c_buffer(key).tobytes()
    half = len(key_b) // 2
    key_1, key_2 = key_b[:half], key_b[half:]
    if compare_digest(key_1, key_2):  # XTS loses its security properties (NIST SP 800-38E)
        raise ValueError("The two halves of an AES-XTS key must be different")
    if not is_buffer(tweak):
        raise TypeError("The tweak must be bytes, bytearray or memoryview")
    if nbytes(tweak) != 16:
        raise ValueError("The tweak must be 16 bytes long in XTS mode")
    tweak_b = c_buffer(tweak).tobytes()
    alg = kernel(f"xts({factory._KERNEL})", key_b, f"{factory._NAME}-XTS")
    return XtsMode(alg, key_2, factory.block_size, tweak_b)
