"""XTS (IEEE Std 1619, NIST SP 800-38E) on the kernel's xts(<cipher>): beyond PyCryptodome.

    c = AES.new(key, AES.MODE_XTS, tweak=sector_number)      # key: 32 or 64 bytes (two AES keys)
    ct0 = c.encrypt(sector0); ct1 = c.encrypt(sector1)      # consecutive data units

- Each encrypt()/decrypt() call is one data unit (a disk sector, say) of at least one block; a last partial
  block is handled by ciphertext stealing, so any length from 16 bytes works. The kernel computes the tweak
  encryption T = E_K2(i) from the IV of every request and does not chain it, so a data unit is one request:
  at most max_message() bytes (the socket buffer, about 208 KiB by default).
- The tweak i is 16 bytes; an int is taken as the data unit sequence number, encoded as IEEE 1619 (5.1) says:
  128-bit little-endian. After each call it steps to the next data unit (i + 1, little-endian), so one
  object encrypts consecutive sectors; the `tweak` attribute keeps the first value.
- Like CBC, an object encrypts or decrypts, not both (TypeError, with PyCryptodome's messages).
- Keys whose two halves are equal are refused (ValueError): SP 800-38E requires Key_1 != Key_2 (the kernel
  enforces it only in FIPS mode, xts_verify_key).
"""

from __future__ import annotations

from threading import get_ident
from types import ModuleType
from typing import Any, Optional

from .._afalg import Tfm
from .._afalg import skcipher as _sk
from ._common import Buffer, OneWay, Writable, c_buffer, io_views, kernel, nbytes, run_blocks
from ._state_machine import Method

__all__ = ["XtsMode"]

_KEY_SIZES = (32, 64)  # XTS-AES-128 and XTS-AES-256 (two keys each)


class XtsMode(OneWay):
    """*XEX-based tweaked-codebook mode with ciphertext stealing (XTS)*, one data unit per call."""

    def __init__(self, alg: Tfm, block_size: int, tweak: bytes) -> None:
        self._alg = alg
        self.block_size = block_size
        """The block size of the underlying cipher, in bytes."""
        self.tweak = tweak
        """The tweak of the first data unit (16 bytes); the object steps it by one per call."""
        self._unit = int.from_bytes(tweak, "little")
        self._next: tuple[Method, ...] = (Method.ENCRYPT, Method.DECRYPT)
        self._init_lock()

    def _crypt(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        """One data unit (>= one block) under the current tweak, then the tweak steps."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._one_way(encrypting)
            src, dst, unit = self._reserve(data, output)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        return self._data_unit(encrypting, src, dst, unit)

    def _reserve(self, data: object, output: object) -> tuple[memoryview, Optional[memoryview], int]:
        """Check the buffers and take the next data unit number (caller holds the lock): a call that stops
        part-way leaves its tweak used, so no two data units ever share one."""
        src, dst = io_views(data, output)
        n = len(src)
        if n < self.block_size:
            raise ValueError(f"Data unit must be at least {self.block_size} bytes long in XTS mode")
        if n > _sk.max_message():
            raise ValueError(f"Data unit longer than {_sk.max_message()} bytes (one kernel request) in XTS mode")
        unit = self._unit
        self._unit = unit + 1
        return src, dst, unit

    def _data_unit(self, encrypt: bool, src: memoryview, dst: Optional[memoryview], unit: int) -> Optional[bytes]:
        tweak = (unit % (1 << 128)).to_bytes(16, "little")
        return run_blocks(self._alg, encrypt, tweak, src, dst, _one_message)


def _one_message(src: memoryview, out: memoryview, end: int) -> bytes:
    raise AssertionError("an XTS data unit is one message")  # pragma: no cover


def _create_xts_cipher(factory: ModuleType, **kwargs: Any) -> XtsMode:
    """AES.new(key, MODE_XTS, tweak) / tweak=...: 16 bytes, or the data unit number as an int."""
    kwargs.pop("use_aesni", None)
    try:
        key = kwargs.pop("key")
    except KeyError:
        raise TypeError("Missing 'key' parameter") from None
    if nbytes(key) not in _KEY_SIZES:
        raise ValueError(f"Incorrect XTS key length ({nbytes(key)} bytes): it must be 32 or 64 (two AES keys)")
    key = c_buffer(key).tobytes()
    half = len(key) // 2
    if key[:half] == key[half:]:
        raise ValueError("The two halves of an XTS key must differ (NIST SP 800-38E)")
    tweak = kwargs.pop("tweak", None)
    if tweak is None:
        raise TypeError("XTS mode needs a 'tweak' (16 bytes, or the data unit sequence number)")
    if kwargs:
        raise TypeError(f"Unknown parameters for XTS: {kwargs!s}")
    if isinstance(tweak, int) and not isinstance(tweak, bool):
        if not 0 <= tweak < 1 << 128:
            raise ValueError("The XTS tweak number must be in [0, 2**128)")
        tweak_bytes = tweak.to_bytes(16, "little")
    else:
        tweak_bytes = c_buffer(tweak).tobytes()
        if len(tweak_bytes) != 16:
            raise ValueError("Incorrect tweak length (it must be 16 bytes long)")
    alg = kernel(f"xts({factory._KERNEL})", key, f"{factory._NAME}-XTS")
    return XtsMode(alg, factory.block_size, tweak_bytes)
