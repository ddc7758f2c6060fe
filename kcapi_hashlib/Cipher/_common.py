"""What every kernel-backed cipher mode shares: PyCryptodome's argument checks and messages, output buffers,
the policy for modes the kernel cannot serve, and the message loop over algif_skcipher.

No socket is touched here: kernel work goes through kcapi_hashlib._afalg.skcipher.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from _thread import RLock as _RLock  # threading.RLock() is a Python function returning this C type
from collections.abc import Sequence
from threading import get_ident
from typing import Any, Callable, NoReturn, Optional, Union, overload

from .. import _policy
from .. import keyring as _keyring
from .._afalg import AlgUnavailable, Tfm
from .._afalg import skcipher as _sk
from ..keyring import KernelKey
from ._state_machine import Method

Buffer = Union[bytes, bytearray, memoryview]
Output = Optional[Union[bytearray, memoryview]]
Writable = Union[bytearray, memoryview]


# --- errors ---------------------------------------------------------------------------------------------


class MessageTooLongError(ValueError, OverflowError):
    """The data is longer than a cipher can process with the same key and nonce (the key stream would
    repeat). PyCryptodome's Crypto.MessageTooLongError; raised as that class when PyCryptodome is loaded."""


def too_long(message: str) -> NoReturn:
    """Raise Crypto.MessageTooLongError if the caller's process has PyCryptodome loaded (so `except` clauses
    written for it work), else ours (also a ValueError and an OverflowError, like PyCryptodome's)."""
    for package in ("Crypto", "Cryptodome"):  # pycryptodomex installs only the second
        crypto = sys.modules.get(package)
        cls = getattr(crypto, "MessageTooLongError", None) if crypto is not None else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            raise cls(message)
    raise MessageTooLongError(message)


class InterruptedCipherError(RuntimeError):
    """A cipher object one of whose calls stopped part-way (an exception landed while it was working: one
    raised by a signal handler, KeyboardInterrupt, a kernel error). Its chaining value or MAC state is then
    unknown, so every later call raises this instead of returning output that could reuse key stream or
    carry a wrong tag. Make a new cipher object (with a new nonce for encryption)."""


# --- one lock per object ---------------------------------------------------------------------------------

# A forked child gets every lock in the state it had in the parent: one that another thread held there
# would never be released. Each object therefore notes the fork generation its lock belongs to and makes a
# new one on its first call in a child (the object itself is then wherever that thread left it: a stream
# cipher's range was reserved before any kernel call, and a chained or MAC state is marked broken).
_fork_generation = [0]
_relock = [threading.RLock()]
_forker = [0]  # in a forked child: the ident of the thread that forked (the child's only thread at first)


def _after_fork_in_child() -> None:
    _relock[0] = threading.RLock()
    _forker[0] = get_ident()
    _fork_generation[0] += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


class Stateful:
    """ONE threading.RLock per cipher object, held around each stateful public method, the mark of the thread
    inside a call (_owner), and the broken mark of InterruptedCipherError. Each method is written

        me = get_ident()
        lock = self._locked(me)     # RuntimeError if this thread is already inside a call on the object
        try:
            lock.acquire()
            self._owner = me
            ...
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired, or a handler's (see accounting.py)
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise

    and never with `with`: CPython 3.14 skips a `with` block's __exit__ when a signal handler raises right after
    the C __enter__ (kcapi_hashlib/_afalg/accounting.py says why each part of the try is where it is). Where a
    handler's exception can land (after a C call, at a function's start, on a backward jump), and why each
    place is safe:
    - during or right after acquire(): inside the try, so the lock is released (or, never acquired, release()
      says RuntimeError: only an RLock refuses a release by a thread that does not hold it);
    - before `self._owner = me`: _owner is not ours, and the finally leaves it alone (another thread may own
      the object while this one was waiting);
    - in the finally, nothing between the owner check and release() is a call.

    Re-entry: a signal handler that uses the object its own thread is inside would deadlock on a plain Lock
    and interleave with the interrupted call on a bare RLock. _locked(me) raises RuntimeError when _owner is
    this thread: a handler that runs before the outer call sets _owner (even between its acquire() and that
    line: the RLock lets the same thread in) finishes its whole call first, and the outer call then works on
    the state it left; one that runs after finds _owner set. Only a thread writes its own ident there and only
    a thread compares it with its own, so another thread never mistakes the mark for its own (free-threaded
    builds included).

    `_broken` is set to the method's name before a call starts changing state that it cannot reserve in one
    step (a chaining value, a MAC fed as data arrives) and cleared when that state is whole again: if any
    exception leaves in between, it stays set and every later call raises InterruptedCipherError."""

    _lock: threading.RLock
    _lock_generation: int
    _owner: int  # the ident of the thread inside a call on the object; 0: none
    _broken: Optional[str]

    def _init_lock(self) -> None:
        self._lock = _RLock()
        self._lock_generation = _fork_generation[0]
        self._owner = 0
        self._broken = None

    def _locked(self, me: int) -> threading.RLock:
        """The object's lock, valid in this process, for thread `me` to take; RuntimeError if `me` is inside a
        call on the object already (see the class docstring)."""
        if self._lock_generation != _fork_generation[0]:
            lock = _relock[0]
            try:  # not `with`: see accounting.py
                lock.acquire()
                if self._lock_generation != _fork_generation[0]:
                    if self._owner != _forker[0]:
                        # No call, or one of a thread of the parent's that does not exist here (and whose
                        # ident a new thread may get): a new lock, no mark.
                        self._lock = threading.RLock()
                        self._owner = 0
                    # else the forking thread is inside a call (a fork from a signal handler): that call goes on
                    # in the child and releases the lock it holds, so the lock and the mark stay.
                    self._lock_generation = _fork_generation[0]
            finally:
                try:
                    lock.release()
                except RuntimeError as e:  # un-acquired: see accounting.py
                    if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                        raise  # a signal handler's, raised after release() returned
        if self._owner == me:
            raise RuntimeError(
                f"{type(self).__name__} object used while a call on it is in progress in this thread "
                "(from a signal handler?)"
            )
        return self._lock

    _next: Sequence[Method]

    def _step(self, method: Method, after: Sequence[Method], message: str) -> None:
        """The state machine: TypeError(message) unless `method` may be called now; then only `after` may."""
        if method not in self._next:
            raise TypeError(message)
        self._next = after

    def _usable(self) -> None:
        if self._broken is not None:
            raise InterruptedCipherError(
                f"this {type(self).__name__} object cannot be used any more: an earlier {self._broken}() stopped "
                "part-way (an exception, e.g. from a signal handler, landed while it worked), so its "
                "chaining value or MAC state is unknown; create a new cipher object"
            )


class CipherMethods:
    """encrypt() and decrypt() as PyCryptodome's block and stream cipher modes declare them: the result as a new
    bytes object, or written into `output` (a bytearray or writable memoryview as long as the input; then None is
    returned). Each mode does the work in _crypt(encrypting, data, output). (The public annotations are spelled
    out, not Writable: help() and inspect.signature show them as each mode file did.)"""

    @overload
    def encrypt(self, plaintext: Buffer) -> bytes: ...

    @overload
    def encrypt(self, plaintext: Buffer, output: Union[bytearray, memoryview]) -> None: ...

    def encrypt(self, plaintext: Buffer, output: Optional[Union[bytearray, memoryview]] = None) -> Optional[bytes]:
        """Encrypt data, continuing from earlier calls (the class docstring says what the mode takes). Into
        `output` if given (then returns None)."""
        return self._crypt(True, plaintext, output)

    @overload
    def decrypt(self, ciphertext: Buffer) -> bytes: ...

    @overload
    def decrypt(self, ciphertext: Buffer, output: Union[bytearray, memoryview]) -> None: ...

    def decrypt(self, ciphertext: Buffer, output: Optional[Union[bytearray, memoryview]] = None) -> Optional[bytes]:
        """Decrypt data, continuing from earlier calls (the class docstring says what the mode takes). Into
        `output` if given (then returns None)."""
        return self._crypt(False, ciphertext, output)

    def _crypt(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        raise NotImplementedError


class OneWay(Stateful, CipherMethods):
    """A mode whose object encrypts or decrypts, not both (PyCryptodome's state machine and its messages).

    By default the whole call runs under the object's lock, after the broken check: the chained modes (CBC, CFB,
    OFB) implement _run(encrypting, data, output). Stream modes that reserve their key-stream range under the
    lock and work outside it (CTR, ChaCha20, XTS) override _crypt and call _one_way() themselves."""

    _AFTER_DECRYPT = "encrypt() cannot be called after decrypt()"
    _AFTER_ENCRYPT = "decrypt() cannot be called after encrypt()"

    def _one_way(self, encrypting: bool) -> None:
        if encrypting:
            self._step(Method.ENCRYPT, (Method.ENCRYPT,), self._AFTER_DECRYPT)
        else:
            self._step(Method.DECRYPT, (Method.DECRYPT,), self._AFTER_ENCRYPT)

    def _crypt(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        me = get_ident()
        lock = self._locked(me)
        try:  # not `with`: see Stateful
            lock.acquire()
            self._owner = me
            self._usable()
            self._one_way(encrypting)
            return self._run(encrypting, data, output)
        finally:
            if self._owner == me:
                self._owner = 0
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def _run(self, encrypting: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        raise NotImplementedError


class Unavailable(Exception):
    """Internal: the kernel cannot serve `what`; the dispatcher applies the policy (see Cipher._create_cipher)."""

    def __init__(self, what: str, reason: object) -> None:
        super().__init__(what, reason)
        self.what = what
        self.reason = reason


def kernel(name: str, key: Buffer, what: str) -> Tfm:
    """The cached keyed tfm for kernel algorithm `name`; Unavailable(what) if the kernel cannot bind it. A kernel
    keyring key (KernelKey) raises instead under every policy: PyCryptodome cannot
    compute without its bytes (kcapi_hashlib.keyring.kernel_tfm)."""
    if isinstance(key, KernelKey):
        return _keyring.kernel_tfm(key, "skcipher", name, "cipher", what)
    try:
        return _sk.keyed(name, key)
    except AlgUnavailable as e:
        raise Unavailable(what, e) from None


# --- which PyCryptodome (kcapi_hashlib.Cipher re-exports these) ----------------------------------------------


_real_package: list[Optional[str]] = []


def real_package() -> Optional[str]:
    """'Crypto' if pycryptodome is installed, else 'Cryptodome' if pycryptodomex is, else None (looked up once,
    without importing either)."""
    if not _real_package:
        found = None
        for name in ("Crypto", "Cryptodome"):
            try:
                if importlib.util.find_spec(name) is not None:
                    found = name
                    break
            except (ImportError, ValueError):
                continue
        _real_package.append(found)
    return _real_package[0]


def real_module(name: str) -> str:
    """PyCryptodome's module `name` ("Crypto.Cipher.AES") in the installed distribution: "Cryptodome.Cipher.AES"
    where only pycryptodomex is installed."""
    package = real_package()
    if package is not None and name.startswith("Crypto."):
        return package + name[len("Crypto") :]
    return name


def pycryptodome_fallback(what: str, reason: object, module: str, make: Callable[[Any], Any]) -> Any:
    """The policy for a cipher the kernel cannot serve: raise under strict (UnsupportedAlgorithm, a ValueError,
    carrying the reason); under fallback count it and return make(PyCryptodome's `module`)."""
    _policy.unavailable("cipher", what, reason)
    module = real_module(module)  # "Cryptodome.Cipher.X" where only pycryptodomex is installed
    try:
        real = importlib.import_module(module)
    except ImportError:
        raise _policy.UnsupportedAlgorithm(
            f"unsupported cipher type {what}", f"{reason}; and PyCryptodome ({module}) is not installed"
        ) from None
    return make(real)


def pop_iv(factory: Any, kwargs: dict[str, Any]) -> Any:
    """The iv=/IV= parameter of PyCryptodome's CBC, CFB and OFB factories, popped from kwargs and checked in their
    order and with their messages (random if neither is given); the caller makes it bytes after its own checks."""
    iv = kwargs.pop("IV", None)
    IV = kwargs.pop("iv", None)

    if (iv, IV) == (None, None):
        from ..Random import get_random_bytes  # only here: a package's from-import runs Python code per call

        iv = get_random_bytes(factory.block_size)
    if iv is not None:
        if IV is not None:
            raise TypeError("You must either use 'iv' or 'IV', not both")
    else:
        iv = IV

    if len(iv) != factory.block_size:
        raise ValueError(f"Incorrect IV length (it must be {factory.block_size} bytes long)")
    return iv


# --- PyCryptodome's buffer rules (Crypto.Util._raw_api) ---------------------------------------------------


def c_backend() -> str:
    """How PyCryptodome passes integers to its C code here: "cffi" (OverflowError for a negative size_t,
    TypeError "an integer is required" for a float) or "ctypes" (a negative value wraps around, the C code
    then refuses it; "int expected instead of float"). Only error paths ask, so that errors match the
    PyCryptodome of this environment: the loaded one's backend, else cffi if importable."""
    raw = sys.modules.get("Crypto.Util._raw_api")
    backend = getattr(raw, "backend", None)
    if backend in ("cffi", "ctypes"):
        return str(backend)
    return "cffi" if importlib.util.find_spec("cffi") is not None else "ctypes"


def size_t_error(value: object, c_error: Callable[[], Exception]) -> Exception:
    """The exception PyCryptodome raises when `value` (negative or not an int) goes to a size_t parameter of
    its C code; c_error() is what the C code itself returns for a wrapped-around negative value."""
    cffi = c_backend() == "cffi"
    if not isinstance(value, int):
        if cffi:
            return TypeError("an integer is required")
        import ctypes

        try:
            ctypes.c_size_t(value)  # type: ignore[arg-type]
        except TypeError as e:  # worded as this Python's ctypes words it
            return e
        return c_error()
    return OverflowError("can't convert negative number to unsigned") if cffi else c_error()


def is_buffer(x: object) -> bool:
    """The types PyCryptodome's c_uint8_ptr takes (bytes, bytearray, memoryview): array.array and other
    buffer exporters are refused, as there."""
    return isinstance(x, (bytes, bytearray, memoryview))


def c_buffer(data: object) -> memoryview:
    """THE buffer helper: a flat, 1-D, format 'B' view of data, whatever its format and shape
    (memoryview(array('I')), 2-D casts, ...), so every length is counted in bytes. TypeError with
    PyCryptodome's message for anything but bytes, bytearray or memoryview; BufferError for a view that is
    not C-contiguous (as memoryview.cast)."""
    if type(data) is bytes:  # the common case: a view of bytes is always flat, 1-D and of format "B"
        return memoryview(data)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"Object type {type(data)} cannot be passed to C code")
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        if not view.c_contiguous:
            raise BufferError("memoryview: underlying buffer is not C-contiguous")
        view = view.cast("B")
    elif not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view


def nbytes(data: object) -> int:
    """The length of data in bytes where it is a buffer PyCryptodome takes; else len(data), so that what is
    not a buffer fails (or passes a length check) exactly as PyCryptodome's len() makes it."""
    if type(data) is bytes or isinstance(data, (bytes, bytearray)):
        return len(data)
    if isinstance(data, memoryview):
        return data.nbytes
    return len(data)  # type: ignore[arg-type]


def key_bytes(key: object) -> bytes:
    if type(key) is bytes:  # immutable: itself
        return key
    return c_buffer(key).tobytes()


def _same_length(n: int) -> ValueError:
    return ValueError(f"output must have the same length as the input  ({n} bytes)")


def is_writeable_buffer(x: object) -> bool:
    return isinstance(x, bytearray) or (isinstance(x, memoryview) and not x.readonly)


def io_views(data: object, output: object, quirk: bool = False) -> tuple[memoryview, Optional[memoryview]]:
    """(input view, output view or None), both flat bytes, checked in PyCryptodome's order and with its
    messages. PyCryptodome sizes the output with len() and then insists that the C code sees the same number
    of bytes on both sides: so a view whose items are not bytes (memoryview(array('I')), a 2-D cast) is
    refused with its ValueError unless an output of the same shape is given, as there.

    quirk: the decrypt() methods of PyCryptodome's ECB, CBC, CFB and OFB modes name the length of `output`,
    not of the input, when the two differ; they pass True."""
    if output is None:
        expected = len(data)  # type: ignore[arg-type]
        dst = None
    else:
        if not is_writeable_buffer(output):
            raise TypeError("output must be a bytearray or a writeable memoryview")
        if len(data) != len(output):  # type: ignore[arg-type]
            raise _same_length(len(output) if quirk else len(data))  # type: ignore[arg-type]
        dst = c_buffer(output)
        expected = dst.nbytes
    src = c_buffer(data)
    if expected != src.nbytes:
        raise _same_length(src.nbytes)
    return src, dst


# --- output buffers -------------------------------------------------------------------------------------

# Below this, the output is received into a bytearray and copied once into bytes (cheap); above it, into a
# new bytes object directly, as PyCryptodome does (create_output_buffer): no second copy of a large output.
_DIRECT = 64 * 1024
_new_bytes: list[Optional[Callable[[int], tuple[bytes, memoryview]]]] = []


def _find_new_bytes() -> Optional[Callable[[int], tuple[bytes, memoryview]]]:
    if sys.implementation.name != "cpython":
        return None
    try:
        import ctypes

        from_size = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
            ("PyBytes_FromStringAndSize", ctypes.pythonapi)
        )
        as_string = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object)(("PyBytes_AsString", ctypes.pythonapi))
    except (ImportError, AttributeError):
        return None

    def new_bytes(n: int) -> tuple[bytes, memoryview]:
        # PyBytes_FromStringAndSize(NULL, n): a new, unshared bytes object whose content is filled in here
        # before anything else can see it (what C extensions do). n >= _DIRECT, so never the empty singleton.
        obj = from_size(None, n)
        array = (ctypes.c_char * n).from_address(as_string(obj))
        return obj, memoryview(array).cast("B")

    return new_bytes


def new_output(n: int) -> tuple[Union[bytes, bytearray], memoryview]:
    """(object to return, writable view of it) for an n-byte result; finish() turns the object into bytes."""
    if n >= _DIRECT:
        if not _new_bytes:
            _new_bytes.append(_find_new_bytes())
        make = _new_bytes[0]
        if make is not None:
            return make(n)
    buf = bytearray(n)
    return buf, memoryview(buf)


def finish(obj: Union[bytes, bytearray]) -> bytes:
    return obj if isinstance(obj, bytes) else bytes(obj)


# --- userspace helpers ----------------------------------------------------------------------------------

_zeros: list[bytes] = []


def zeros(n: int) -> memoryview:
    """A read-only view of n zero bytes (n <= the message limit), from one shared buffer."""
    size = max(_sk.max_message(), n)
    if not _zeros or len(_zeros[0]) < size:
        _zeros[:] = [bytes(size)]
    return memoryview(_zeros[0])[:n]


def xor_into(dst: memoryview, a: Buffer, b: Buffer) -> None:
    """dst[:] = a XOR b (equal lengths). Only ever combines data with a key stream the kernel computed."""
    n = len(dst)
    if n:
        dst[:] = (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(n, "little")


# --- the message loop -----------------------------------------------------------------------------------


def blocks(
    alg: Tfm, encrypt: bool, iv: Optional[bytes], src: memoryview, dst: memoryview, next_iv: Callable[[int], bytes]
) -> None:
    """Run src through alg into dst (whole blocks), one message per max_message() bytes. next_iv(end) is the IV
    of the message that starts at byte `end` of src (after the earlier messages finished)."""
    limit = _sk.max_message()
    pos, n = 0, len(src)
    while pos < n:
        end = min(n, pos + limit)
        _sk.message(alg, encrypt, iv, (src[pos:end],), (dst[pos:end],))
        pos = end
        if pos < n and iv is not None:
            iv = next_iv(pos)


def run_blocks(
    alg: Tfm,
    encrypt: bool,
    iv: Optional[bytes],
    src: memoryview,
    dst: Optional[memoryview],
    next_iv: Callable[[memoryview, memoryview, int], bytes],
) -> Optional[bytes]:
    """blocks() for a whole-block input, into dst or into new bytes (returned). next_iv(src, out, end) gives
    the IV after `end` bytes. Nothing reaches the kernel for an empty input."""
    n = len(src)
    if dst is None:
        if n == 0:
            return b""
        if n <= _sk.max_message():
            return _sk.message_bytes(alg, encrypt, iv, (src,))
        obj, out = new_output(n)
        blocks(alg, encrypt, iv, src, out, lambda end: next_iv(src, out, end))
        return finish(obj)
    if n:
        blocks(alg, encrypt, iv, src, dst, lambda end: next_iv(src, dst, end))
    return None
