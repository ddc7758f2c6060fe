"""Counter (CTR) mode on the kernel: PyCryptodome's CtrMode.

PyCryptodome's counter block is prefix || counter (counter_len bytes, big or little endian) || suffix, and
only the counter field counts, wrapping modulo 2**(8 * counter_len) with the prefix and suffix unchanged;
MessageTooLongError once 2**(8 * counter_len) blocks would be used.

- Big-endian counter, no suffix (nonce=/initial_value=, and most Counter objects): the kernel's ctr(<cipher>)
  does the whole job. It increments the whole block as one big-endian number (crypto_inc), which equals
  PyCryptodome's counter until the counter field wraps; so a message never crosses a wrap (it ends there and
  the next one starts with the wrapped IV). Messages start on a block boundary with the IV of that block;
  a partial first block is padded with zeros that go to scratch space (ctr steps past a partial final block,
  so the position is kept here). All of it: Cipher._keystream, the engine every counter-mode cipher uses.
- Little-endian counters or a suffix (Counter.new(..., little_endian=True) / suffix=...): ctr(<cipher>) cannot
  count that way. The counter blocks are built here and enciphered by the kernel's ecb(<cipher>); the data is
  XORed with that key stream in userspace.
"""

from __future__ import annotations

import operator
import os
from threading import get_ident
from types import ModuleType
from typing import Any, Literal, Optional

from .._afalg import Tfm
from .._afalg import skcipher as _sk
from . import _keystream
from ._common import (
    Buffer,
    OneWay,
    Writable,
    c_buffer,
    finish,
    io_views,
    kernel,
    new_output,
    too_long,
    xor_into,
)
from ._state_machine import Method

__all__ = ["CtrMode"]


class CtrMode(OneWay):
    """*CounTeR (CTR)* mode, NIST SP 800-38A section 6.5 (and Appendix B for the counter block).

    Thread-safe: each call reserves its key-stream range (advances the position) under the object's lock
    before any kernel work, then runs outside it; an exception anywhere after that leaves the range consumed
    (as PyCryptodome's C call would have), so no later call reuses that key stream."""

    _threads = 1  # PyCryptodome's attribute (threads_param's value), set by _create_ctr_cipher

    def __init__(
        self,
        alg: Tfm,
        initial_counter_block: bytes,
        prefix_len: int,
        counter_len: int,
        little_endian: bool,
        ecb: bool,
    ) -> None:
        self._nonce: Optional[bytes] = None
        if len(initial_counter_block) == prefix_len + counter_len:
            self._nonce = bytes(initial_counter_block[:prefix_len])
        self.block_size = len(initial_counter_block)
        """The block size of the underlying cipher, in bytes."""
        self._alg = alg
        self._ecb = ecb  # True: alg is ecb(<cipher>) and the counter blocks are made here
        self._prefix = initial_counter_block[:prefix_len]
        self._suffix = initial_counter_block[prefix_len + counter_len :]
        self._counter_len = counter_len
        self._order: Literal["little", "big"] = "little" if little_endian else "big"
        self._initial = int.from_bytes(initial_counter_block[prefix_len : prefix_len + counter_len], self._order)
        self._modulus = 1 << (8 * counter_len)
        self._position = 0  # bytes of key stream used (reserved) so far
        self._next: tuple[Method, ...] = (Method.ENCRYPT, Method.DECRYPT)
        self._init_lock()

    @property
    def nonce(self) -> bytes:
        """The fixed part at the beginning of the counter block (read-only, as in PyCryptodome 4.5). It is not
        available if the counter block has a fixed suffix (AttributeError with PyCryptodome 4.5's message)."""
        if self._nonce is None:
            raise AttributeError(
                "This CTR cipher has no 'nonce' attribute, because its counter has a suffix:"
                " use the prefix, the suffix and the initial value that you passed to Counter.new()"
            )
        return self._nonce

    def _crypt(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        """Data of any length, continuing the key stream of earlier calls."""
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._one_way(encrypting)
            src, dst = io_views(data, output)
            start = self._reserve(src.nbytes)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        return self._process(src, dst, start)

    def _counter_block(self, index: int) -> bytes:
        value = (self._initial + index) % self._modulus
        return self._prefix + value.to_bytes(self._counter_len, self._order) + self._suffix

    def _wrap_after(self, index: int) -> Optional[int]:
        """The first block index after `index` at which the counter field wraps to zero (the kernel would carry
        into the prefix there); None when the counter is the whole block (the kernel wraps the same way)."""
        if not self._prefix:
            return None
        return index + self._modulus - (self._initial + index) % self._modulus

    def _reserve(self, n: int) -> int:
        """Take the next n bytes of key stream (caller holds the lock); returns where they start."""
        start = self._position
        if start + n > self._modulus * self.block_size:
            too_long("The counter has wrapped around in CTR mode")
        self._position = start + n
        return start

    def _process(self, src: memoryview, dst: Optional[memoryview], start: int) -> Optional[bytes]:
        if self._ecb:
            return self._process_ecb(src, dst, start)
        return _keystream.crypt(self._alg, src, dst, start, self.block_size, self._counter_block, self._wrap_after)

    def _process_ecb(self, src: memoryview, dst: Optional[memoryview], start: int) -> Optional[bytes]:
        n = len(src)
        if dst is None:
            if n == 0:
                return b""
            obj, out = new_output(n)
            self._ecb_into(src, out, start)
            return finish(obj)
        self._ecb_into(src, dst, start)
        return None

    def _ecb_into(self, src: memoryview, dst: memoryview, start: int) -> None:
        bs = self.block_size
        limit = _sk.max_message() // bs * bs
        done, n = 0, len(src)
        while done < n:
            index, head = divmod(start + done, bs)
            take = min(n - done, limit - head)
            count = -(-(head + take) // bs)
            counters = b"".join(self._counter_block(index + i) for i in range(count))
            stream = _sk.message_bytes(self._alg, True, None, (counters,))
            xor_into(dst[done : done + take], src[done : done + take], stream[head : head + take])
            done += take


def _create_ctr_cipher(factory: ModuleType, **kwargs: Any) -> CtrMode:
    """PyCryptodome's factory: nonce/initial_value, or a Crypto.Util.Counter object (a dict)."""
    threads = _threads_param(kwargs.pop("threads", 1))
    mode = _create(factory, kwargs)
    # PyCryptodome's CtrMode._threads (threads_param's value): its GCM reads it from the CTR object it builds with
    # the factory, so PyCryptodome's own GCM (a fallback) works on this CTR too. The kernel schedules the work.
    mode._threads = threads
    return mode


def _create(factory: ModuleType, kwargs: dict[str, Any]) -> CtrMode:
    key = factory._create_base_cipher(kwargs)

    counter = kwargs.pop("counter", None)
    nonce = kwargs.pop("nonce", None)
    initial_value = kwargs.pop("initial_value", None)
    if kwargs:
        raise TypeError(f"Invalid parameters for CTR mode: {kwargs!s}")

    if counter is not None and (nonce, initial_value) != (None, None):
        raise TypeError("'counter' and 'nonce'/'initial_value' are mutually exclusive")

    block_size = factory.block_size
    what = f"{factory._NAME}-CTR"
    if counter is None:
        # Crypto.Util.Counter is not used
        if nonce is None:
            if block_size < 16:
                raise TypeError("Impossible to create a safe nonce for short block sizes")
            from ..Random import get_random_bytes  # here, not per call: a package's from-import runs Python code

            nonce = get_random_bytes(block_size // 2)
        else:
            if len(nonce) >= block_size:
                raise ValueError("Nonce is too long")

        # What is not nonce is counter
        counter_len = block_size - len(nonce)

        if initial_value is None:
            initial_value = 0

        if isinstance(initial_value, int):
            if (1 << (counter_len * 8)) - 1 < initial_value:
                raise ValueError("Initial counter value is too large")
            # long_to_bytes(0, counter_len) is counter_len zero bytes: the common case, without the conversion
            # (an int exactly: a subclass's own __eq__ must not decide the counter)
            zero = type(initial_value) is int and initial_value == 0
            value = bytes(counter_len) if zero else _long_to_bytes(initial_value, counter_len)
            initial_counter_block = nonce + value
        else:
            if len(initial_value) != counter_len:
                raise ValueError(
                    f"Incorrect length for counter byte string ({len(initial_value)} bytes, expected {counter_len})"
                )
            initial_counter_block = nonce + initial_value
        icb = c_buffer(initial_counter_block).tobytes()
        alg = kernel(f"ctr({factory._KERNEL})", key, what)
        return CtrMode(alg, icb, len(nonce), counter_len, False, False)

    # Crypto.Util.Counter is used: 'counter' used to be a callable object, now it is a dictionary.
    _counter = dict(counter)
    try:
        counter_len = _counter.pop("counter_len")
        prefix = _counter.pop("prefix")
        suffix = _counter.pop("suffix")
        initial_value = _counter.pop("initial_value")
        little_endian = _counter.pop("little_endian")
    except KeyError:
        raise TypeError("Incorrect counter object (use Crypto.Util.Counter.new)") from None

    # Compute initial counter block
    words = []
    while initial_value > 0:
        words.append(bytes([initial_value & 255]))
        initial_value >>= 8
    words += [b"\x00"] * max(0, counter_len - len(words))
    if not little_endian:
        words.reverse()
    initial_counter_block = prefix + b"".join(words) + suffix

    if len(initial_counter_block) != block_size:
        raise ValueError(
            f"Size of the counter block ({len(initial_counter_block)} bytes) must match block size ({block_size})"
        )
    icb = c_buffer(initial_counter_block).tobytes()
    if little_endian or len(suffix):
        alg = kernel(f"ecb({factory._KERNEL})", key, what)
        return CtrMode(alg, icb, len(prefix), counter_len, bool(little_endian), True)
    alg = kernel(f"ctr({factory._KERNEL})", key, what)
    return CtrMode(alg, icb, len(prefix), counter_len, False, False)


def _threads_param(threads: Any) -> int:
    """PyCryptodome's check of `threads` and its value (Crypto.Util._threads.threads_param: 0 is the cores this
    process may run on, as Crypto.Util._cpu_features.available_cores counts them)."""
    if not isinstance(threads, int) or isinstance(threads, bool):
        raise TypeError("'threads' must be an integer")
    if threads < 0:
        raise ValueError("'threads' must be a non-negative integer")
    if threads:
        return threads
    count: Optional[int]
    if hasattr(os, "process_cpu_count"):  # 3.13+: affinity and -X cpu_count
        count = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return count or 1


def _long_to_bytes(n: int, blocksize: int) -> bytes:
    """Crypto.Util.number.long_to_bytes(n, blocksize)."""
    n = operator.index(n)
    if n < 0 or blocksize < 0:
        raise ValueError("Values must be non-negative")
    length = max((n.bit_length() + 7) // 8, 1)
    if blocksize > 0:
        length = -(-length // blocksize) * blocksize
    return n.to_bytes(length, "big")
