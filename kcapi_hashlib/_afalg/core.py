"""The one package that talks to the kernel: every AF_ALG syscall and errno translation lives in it.

Public modules never touch sockets; they call the small API below. The shape of an AF_ALG user:

    tfm = socket(AF_ALG, SOCK_SEQPACKET); tfm.bind((type, name))   # a transform ("tfm") socket
    tfm.setsockopt(SOL_ALG, ALG_SET_KEY, key)                       # keyed algorithms, before accept
    op, _ = tfm.accept()                                            # an operation socket
    op.sendmsg(...); op.recv(...)                                   # the work

This package splits that work the way the kernel does: core (crypto/af_alg.c: sockets, keys, fork hooks), hash
(crypto/algif_hash.c; splice feeds it files without a copy), skcipher, aead and rng (crypto/algif_*.c); errors
says what each refusal means (core re-exports its names), procfs and restrict read /proc/crypto and
af_alg_restrict, drivers binds by driver name, lifecycle runs the fork hooks and lets go of every tfm at exit.
Kernel behaviour relied on is cited by the kernel function that has it; docs/kernel-notes.md collects these
facts by kernel file.
"""

from __future__ import annotations

import _socket
import collections
import errno
import functools
import operator
import os
import socket
import struct
import weakref
from itertools import starmap
from typing import Any, Callable, Optional, Sequence, Union

from . import accounting

# The operation counters and count()/count_exchange()/stats() live in counting.py (exchange() below counts inline
# into the same counters); the errors and their explanations in errors.py. core's names for them stay (every module
# here and the command line use core.count, core.AlgUnavailable, core.kernel_error, ...).
from .counting import _stats as _stats
from .counting import count as count
from .counting import count_exchange as count_exchange
from .counting import kernel_operations as kernel_operations
from .counting import stats as stats
from .errors import _KEY_STATE as _KEY_STATE
from .errors import TRANSIENT as TRANSIENT
from .errors import AlgUnavailable as AlgUnavailable
from .errors import Explanation as Explanation
from .errors import KernelError as KernelError
from .errors import KeyUnusable as KeyUnusable
from .errors import explain as explain
from .errors import explanation as explanation
from .errors import kernel_error as kernel_error
from .keyring import Serial

Buffer = Union[bytes, bytearray, memoryview]

AF_ALG = 38
SOL_ALG = 279
ALG_SET_KEY = 1
ALG_SET_IV = 2
ALG_SET_OP = 3
ALG_SET_AEAD_ASSOCLEN = 4
ALG_SET_AEAD_AUTHSIZE = 5
ALG_SET_KEY_BY_KEY_SERIAL = 7  # Linux >= 6.2 (crypto/af_alg.c: alg_setkey_by_key_serial)
ALG_OP_DECRYPT = 0
ALG_OP_ENCRYPT = 1
MSG_MORE = socket.MSG_MORE
SPLICE_F_MORE = 4
F_SETPIPE_SZ = 1031

# One sendmsg() is clamped by the VFS to MAX_RW_COUNT (INT_MAX & PAGE_MASK); a short count from algif_hash
# is fatal (6.5+: a failing later chunk returns a short count with the state discarded), so we never let the
# clamp produce one: larger inputs go in chunks of this size.
_MAX_SEND = 1 << 30

# Idle, finalized op sockets kept per tfm. A finalized hash op socket starts a fresh hash on its next send
# (hash_sendmsg: crypto_ahash_init when !ctx->more), so reusing one saves accept() + close() per object.
_POOL_MAX = 16
_FOLD = accounting.FOLD

# af_alg_sndbuf/af_alg_rcvbuf round socket buffers down to whole pages: 4 KiB on x86, 64 KiB on some arm64/ppc64.
PAGE = os.sysconf("SC_PAGESIZE")


# --- descriptor ownership -------------------------------------------------------------------------------
#
# Every AF_ALG descriptor is owned by exactly one C socket object (CPython's _socket.socket type, or OpSocket, its
# subclass with no Python __init__ or __del__) from the syscall that made it to its one close(2). The object's C
# finalizer closes the descriptor when the object is collected, and close() is idempotent (sock_close clears the
# number before closing it). That is what makes ownership hold under exceptions raised by signal handlers, which
# CPython runs at bytecode boundaries (after any call returns, at function entry):
#
# - A new descriptor becomes a socket object inside one C call: accept_from() runs accept4 and the socket
#   constructor as map()/starmap() over C callables inside next(), so no bytecode runs between "the kernel gave
#   us fd N" and "N is owned". (`fd, _ = sock._accept()` then `socket(fileno=fd)` would leak N if a handler
#   raised in between.) Wherever the object is dropped after that, on any path, its finalizer closes N.
# - No second Python object ever holds the same number: a socket.socket(fileno=N) wrapper of a descriptor owned
#   elsewhere closes N when it is collected while the owner still uses N, and the next socket()/accept() of
#   anyone gets N back, so one object's writes land in another's kernel state. Bare numbers are only read from
#   the owner for the duration of one os.read/os.write/splice call.
# - No Python-level __del__ is relied on: a handler can raise at a __del__'s first line, before it closes.
#
# The price: the socket constructor validates the number with getsockname(2), one syscall per accept(). Op
# sockets are pooled per tfm, so steady-state one-shot operations never pay it.
#
# Sockets are made with the C type, not socket.socket: libraries that patch socket.socket (eventlet, gevent,
# pytest-socket) must not see or block kernel crypto sockets.

_SOCK = _socket.socket
_NO_ARGS = ((),)
_first_item = operator.itemgetter(0)


def _consume(it: Any) -> None:
    collections.deque(it, 0)


def _blocking(sock: Any) -> Any:
    # socket.setdefaulttimeout() applies to every new C socket too (init_sockobject): AF_ALG operations are
    # synchronous, so keep them plain blocking calls (no poll() before each).
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    return sock


def new_socket() -> Any:
    """socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC): a C socket object owning the new descriptor."""
    return _blocking(_SOCK(AF_ALG, socket.SOCK_SEQPACKET, 0))


class OpSocket(_SOCK):
    """An operation socket: a C socket object (see "descriptor ownership") with the calls AF_ALG needs.

    Plain sends and receives of the hot paths are write(2)/writev(2) and read(2)/readv(2) on its descriptor,
    which on a socket are sendmsg/recvmsg without flags (net/socket.c: sock_write_iter, sock_read_iter; the
    MSG_EOR they add for SEQPACKET is ignored by hash_sendmsg and af_alg_sendmsg).

    An OpSocket is used by one owner at a time (a pool, a hash stream under its lock, one call); it is not itself
    a lock. Every path that leaves its kernel state unknown closes it or drops it (then it closes itself).
    """

    __slots__ = ()

    @classmethod
    def accept_from(cls, parent: Any) -> OpSocket:
        """accept4() on `parent`, the new descriptor owned by the returned object before any bytecode runs."""
        op: OpSocket = next(map(_wrap_op, map(_first_item, starmap(parent._accept, _NO_ARGS))))
        return _blocking(op)  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        return bool(self.fileno() < 0)

    def send(self, data: Buffer, flags: int = 0) -> int:  # type: ignore[override]
        return os.write(self.fileno(), data) if not flags else int(_SOCK.send(self, data, flags))

    def sendmsg(  # type: ignore[override]
        self, buffers: Sequence[Buffer], ancdata: Sequence[tuple[int, int, Buffer]] = (), flags: int = 0
    ) -> int:
        if not ancdata and not flags:
            return os.writev(self.fileno(), buffers)
        return int(_SOCK.sendmsg(self, buffers, ancdata, flags))

    def recv(self, size: int, flags: int = 0) -> bytes:
        return os.read(self.fileno(), size) if not flags else bytes(_SOCK.recv(self, size, flags))

    def recv_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        if flags:
            return int(_SOCK.recv_into(self, buffer, nbytes, flags))
        view = memoryview(buffer).cast("B")
        return os.readv(self.fileno(), [view[:nbytes] if nbytes else view])

    def accept(self) -> OpSocket:
        """accept() on an op socket (a hash clone)."""
        return OpSocket.accept_from(self)


_wrap_op = functools.partial(OpSocket, AF_ALG, socket.SOCK_SEQPACKET, 0)  # OpSocket(..., fileno=fd): owns fd


class Tfm:
    """A bound (and possibly keyed) transform socket, and a pool of its idle op sockets.

    Op sockets keep the tfm alive in the kernel (af_alg_accept takes a reference), so closing the tfm
    socket while op sockets live is safe.

    Its algorithm and key are set in the constructor, before the object is returned, and never change after:
    a Tfm is shared between threads (caches hand it out) only as an immutable thing. The idle pool is a list
    used only through pop() and append(), each one call on a built-in list (atomic: the GIL, or the list's own
    lock in free-threaded builds): an op socket is in the pool or in one caller's hands, never both.
    """

    __slots__ = ("alg_type", "name", "_sock", "_idle", "_acct", "_open", "__weakref__")

    def __init__(
        self,
        alg_type: str,
        name: str,
        key: Union[Buffer, Serial, None] = None,
        authsize: Optional[int] = None,
    ) -> None:
        self.alg_type = alg_type
        self.name = name
        # False from close() and forget() on, before the socket goes: the hot paths' "closed" (release(), the
        # caches) without a fileno() call. Set only by the owner's close/forget calls (a plain store).
        self._open = False
        self._idle: list[OpSocket] = []
        self._acct = accounting.counter(alg_type, name)
        try:
            sock = self._sock = new_socket()
        except OSError as e:
            raise AlgUnavailable(e.errno or errno.EIO, "socket", alg_type, name) from None
        try:
            try:
                sock.bind((alg_type, name))
            except OSError as e:
                raise AlgUnavailable(e.errno or errno.EIO, "bind", alg_type, name) from None
            count(self, "bind")
            # Key and authsize go on the tfm before any accept: the op socket has no setsockopt
            # (EOPNOTSUPP) and alg_setsockopt answers EBUSY once a keyed op socket exists.
            if key is not None:
                self._setkey(key)
            if authsize is not None:
                self._setauthsize(authsize)
        except BaseException:
            sock.close()
            raise
        self._open = True
        _live_tfms[id(self)] = weakref.ref(self, _forget_tfm(id(self)))

    def _live(self) -> Any:
        sock = self._sock
        if sock.fileno() < 0:
            raise ValueError(f"{self.alg_type} transform {self.name!r} is closed")
        return sock

    @property
    def closed(self) -> bool:
        return not self._open or bool(self._sock.fileno() < 0)

    def _setkey(self, key: Union[Buffer, Serial]) -> None:
        """ALG_SET_KEY (alg_setkey), or ALG_SET_KEY_BY_KEY_SERIAL for a keyring key; EBUSY while op sockets of
        this tfm exist. Only from the constructor: a tfm's key never changes once others can see it."""
        if isinstance(key, Serial):
            # alg_setkey_by_key_serial: optlen must be sizeof(key_serial_t) (a native int32, else EINVAL); the
            # kernel copies the payload under key->sem into sock_kmalloc'ed memory, sets it, and frees it zeroed.
            # The bytes never enter this process.
            try:
                self._live().setsockopt(SOL_ALG, ALG_SET_KEY_BY_KEY_SERIAL, struct.pack("=i", key.serial))
            except OSError as e:
                step = f"setsockopt(ALG_SET_KEY_BY_KEY_SERIAL, key {key.serial})"
                err = e.errno if e.errno is not None else errno.EIO
                if err in _KEY_STATE:
                    raise KeyUnusable(err, explain(err, step, self.alg_type, self.name)) from None
                raise kernel_error(e, step, self.alg_type, self.name) from None
            return
        try:
            self._live().setsockopt(SOL_ALG, ALG_SET_KEY, bytes(key))
        except OSError as e:
            raise kernel_error(e, "setsockopt(ALG_SET_KEY)", self.alg_type, self.name) from None

    def _setauthsize(self, authsize: int) -> None:
        """ALG_SET_AEAD_AUTHSIZE: optval NULL, optlen = the tag size (alg_setsockopt -> crypto_aead_setauthsize)."""
        try:
            self._live().setsockopt(SOL_ALG, ALG_SET_AEAD_AUTHSIZE, None, authsize)
        except OSError as e:
            raise kernel_error(e, "setsockopt(ALG_SET_AEAD_AUTHSIZE)", self.alg_type, self.name) from None

    def getsockopt(self, level: int, option: int) -> int:
        return int(self._live().getsockopt(level, option))

    def accept(self) -> OpSocket:
        """A new op socket (never from the pool)."""
        sock = self._live()
        try:
            op = OpSocket.accept_from(sock)
        except OSError as e:
            raise kernel_error(e, "accept", self.alg_type, self.name) from None
        count(self, "accept")
        return op

    def op(self) -> OpSocket:
        """An op socket with no pending state: an idle pooled one, else a fresh accept()."""
        try:
            return self._idle.pop()
        except IndexError:
            return self.accept()

    def release(self, op: OpSocket) -> None:
        """Give back an op socket whose operation has been finalized (recv done): pooled, or closed."""
        idle = self._idle
        if self._open and len(idle) < _POOL_MAX and op.fileno() >= 0:  # neither closed
            idle.append(op)
            if not self._open:  # close() ran meanwhile: it may have emptied the pool before our append
                self.drop_idle()
        else:
            op.close()

    def drop_idle(self) -> None:
        idle = self._idle
        while idle:
            try:
                op = idle.pop()
            except IndexError:
                break
            op.close()

    def close(self) -> None:
        self._open = False  # first: a release() racing with this drops what it pooled (see release)
        self.drop_idle()
        self._sock.close()

    def __del__(self) -> None:
        # The quiet path: close() before the C finalizers of the sockets would (they close too, with a
        # ResourceWarning). Correctness never depends on this running to the end (see "descriptor ownership").
        idle = getattr(self, "_idle", None)
        while idle:
            idle.pop().close()
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    def forget(self) -> None:
        """Let go of every descriptor without closing it (interpreter exit: the kernel closes them)."""
        self._open = False
        idle = self._idle
        while idle:
            idle.pop().detach()
        self._sock.detach()


def _forget_tfm(ident: int) -> Callable[[Any], None]:
    def gone(_ref: Any) -> None:
        _live_tfms.pop(ident, None)

    return gone


# id -> weak reference of every open Tfm. Used only through single dict calls (setitem, pop, copy): each is atomic
# (the GIL, or the dict's own lock in free-threaded builds), so a copy is a consistent snapshot, safe in fork hooks.
_live_tfms: dict[int, weakref.ref[Tfm]] = {}


def live_tfms() -> list[Tfm]:
    return [t for t in map(_deref, _live_tfms.copy().values()) if t is not None]


def _deref(ref: weakref.ref[Tfm]) -> Optional[Tfm]:
    return ref()


# (type, name) -> the shared unkeyed tfm, or why the kernel will not bind it. Only answers about the algorithm
# are remembered (AlgUnavailable.transient is False): a full descriptor table or memory pressure at first use
# must not make an algorithm "unsupported" for the life of the process.
_tfm_cache: dict[tuple[str, str], Tfm] = {}
_probe_cache: dict[tuple[str, str], AlgUnavailable] = {}


def tfm(alg_type: str, name: str) -> Tfm:
    """The shared unkeyed tfm for (alg_type, name), bound once per process; raises AlgUnavailable.

    No lock: two threads missing at once each bind one, the first stored wins, the other is closed when its
    caller drops it (a bound tfm is stateless, so either serves)."""
    key = (alg_type, name)
    t = _tfm_cache.get(key)
    if t is not None and t._open:
        return t
    failure = _probe_cache.get(key)
    if failure is not None:
        raise failure
    try:
        t = Tfm(alg_type, name)
    except AlgUnavailable as e:
        if not e.transient:
            _probe_cache[key] = e
        raise
    stored = _tfm_cache.setdefault(key, t)
    if stored.closed:  # closed under us (close_all): ours replaces it
        stored = _tfm_cache[key] = t
    return stored


def bind_failure(alg_type: str, name: str) -> Optional[AlgUnavailable]:
    """The remembered refusal to bind (alg_type, name), if any (never a transient one)."""
    return _probe_cache.get((alg_type, name))


def remember_failure(e: AlgUnavailable) -> None:
    if e.step in ("socket", "bind") and not e.transient:
        _probe_cache[(e.alg_type, e.alg_name)] = e


def probe(alg_type: str, name: str) -> Optional[AlgUnavailable]:
    """None if the kernel can bind (alg_type, name), else why not. Binds at most once per process (a transient
    failure is returned but not remembered: the next probe tries again)."""
    try:
        tfm(alg_type, name)
    except AlgUnavailable as e:
        return e
    return None


def af_alg_status() -> Optional[AlgUnavailable]:
    """None if socket(AF_ALG) works in this process, else why not."""
    try:
        new_socket().close()
    except OSError as e:
        return AlgUnavailable(e.errno or errno.EIO, "socket", "any", "*")
    return None


def keyed_tfm(alg_type: str, name: str, key: Union[Buffer, Serial], authsize: Optional[int] = None) -> Tfm:
    """A new private tfm carrying `key` (one tfm per key: the key is fixed once op sockets exist)."""
    failure = _probe_cache.get((alg_type, name))
    if failure is not None:
        raise failure
    try:
        return Tfm(alg_type, name, key, authsize)
    except AlgUnavailable as e:
        remember_failure(e)
        raise


# --- sending and receiving ------------------------------------------------------------------------------


def nbytes(b: Buffer) -> int:
    """The length of a buffer in bytes (len() of a memoryview counts items: array('I') has 4 bytes each)."""
    return b.nbytes if isinstance(b, memoryview) else len(b)


def _short(alg: Tfm, n: int, size: int) -> KernelError:
    return KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: short send ({n} of {size} bytes)")


def send(op: OpSocket, data: Buffer, flags: int, alg: Tfm) -> None:
    """One sendmsg of data (< _MAX_SEND bytes); a short count is fatal."""
    size = nbytes(data)
    try:
        n = op.send(data, flags)
    except OSError as e:
        raise kernel_error(e, "send", alg.alg_type, alg.name) from None
    count(alg, "send", size)
    if n != size:
        raise _short(alg, n, size)


def sendv(op: OpSocket, bufs: Sequence[Buffer], flags: int, alg: Tfm) -> None:
    """Send several buffers, gathered into as few sendmsg calls as _MAX_SEND allows."""
    pending = [v for v in (memoryview(b).cast("B") for b in bufs) if len(v)]
    total = sum(len(b) for b in pending)
    if total == 0:
        if not flags & MSG_MORE:
            send(op, b"", flags, alg)
        return
    while pending:
        batch: list[memoryview] = []
        size = 0
        while pending and size < _MAX_SEND:
            b = pending[0]
            take = min(len(b), _MAX_SEND - size)
            batch.append(b[:take])
            size += take
            if take == len(b):
                pending.pop(0)
            else:
                pending[0] = b[take:]
        last = not pending
        f = flags if last else flags | MSG_MORE
        try:
            n = op.sendmsg(batch, (), f) if len(batch) > 1 else op.send(batch[0], f)
        except OSError as e:
            raise kernel_error(e, "sendmsg", alg.alg_type, alg.name) from None
        count(alg, "send", size)
        if n != size:
            raise _short(alg, n, size)


def recv(op: OpSocket, size: int, alg: Tfm) -> bytes:
    """A digest or MAC of exactly `size` bytes. hash_recvmsg copies min(buffer, digest size) bytes, so asking for
    one more shows any other digest size: the op socket is then not what the caller thinks it is (another
    algorithm), and that raises, never returns."""
    try:
        out = op.recv(size + 1)  # one byte more: a longer digest shows itself too (hash_recvmsg copies min(len, ds))
    except OSError as e:
        raise kernel_error(e, "recv", alg.alg_type, alg.name) from None
    count(alg, "recv")
    if len(out) != size:
        raise _wrong_size(alg, len(out), size)
    return out


def _wrong_size(alg: Tfm, got: int, size: int) -> KernelError:
    return KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: wrong digest size ({got}, not {size} bytes)")


def exchange(alg: Tfm, data: Buffer, size: int, op: Optional[OpSocket] = None) -> bytes:
    """The one-shot digest or MAC of data: one write and one read (below _MAX_SEND bytes), done directly, on `op` (an
    op socket with no pending state) or, by default, on a pooled one of alg's (op() and release() written inline:
    the hot path of every one-shot). Counts, errors and the digest-size check are send()'s and recv()'s (a recv
    that fails counts the send that succeeded). A pooled op socket goes back to the pool only after its read
    returned the right size (the operation is then finalized); on any exception, a signal handler's included, it
    is dropped instead and closes itself."""
    n_in = len(data) if type(data) is bytes else nbytes(data)
    if n_in >= _MAX_SEND:  # more than one write takes
        return exchange_gathered(alg, (data,), size, op)
    pooled = op is None
    idle = alg._idle
    if op is None:
        try:
            op = idle.pop()
        except IndexError:
            op = alg.accept()
    fd = op.fileno()  # -1 once closed: os.write/os.read then raise EBADF, as op.send/op.recv would
    try:
        n = os.write(fd, data)
    except OSError as e:
        raise kernel_error(e, "send", alg.alg_type, alg.name) from None
    if n != n_in:
        count(alg, "send", n_in)
        raise _short(alg, n, n_in)
    try:
        out = os.read(fd, size + 1)  # one byte more: see recv()
    except OSError as e:
        count(alg, "send", n_in)
        raise kernel_error(e, "recv", alg.alg_type, alg.name) from None
    c = alg._acct  # count_exchange(alg, n_in), inline: one append, no lock (see accounting.Counter)
    log = c.log
    log.append(n_in)
    if len(log) >= _FOLD:
        accounting.fold(c)
    if len(out) != size:
        raise _wrong_size(alg, len(out), size)
    if pooled:  # release(op), inline: no one else holds op (it was popped), so it is open
        if alg._open and len(idle) < _POOL_MAX:
            idle.append(op)
            if not alg._open:  # close() ran meanwhile: it may have emptied the pool before our append
                alg.drop_idle()
        else:
            op.close()
    return out


def exchange_gathered(alg: Tfm, bufs: Sequence[Buffer], size: int, op: Optional[OpSocket] = None) -> bytes:
    """exchange() of the concatenation of bufs, any size: sendv's batches, then recv (on `op`, or a pooled one
    given back once the recv returned)."""
    pooled = op is None
    if op is None:
        op = alg.op()
    sendv(op, bufs, 0, alg)
    out = recv(op, size, alg)
    if pooled:
        alg.release(op)
    return out


# --- fork -----------------------------------------------------------------------------------------------
# After fork, parent and child share every kernel object (docs/kernel-notes.md#fork). Each op-socket owner (hash
# streams, caches) registers hooks here; lifecycle.py runs them around os.fork(). A hook may be
# cut short by an exception from a signal handler (os.register_at_fork reports and ignores it): each hook is
# written so that what it did is undone by its after-fork twins whatever point it reached.

fork_hooks: list[tuple[Callable[[], None], Callable[[], None], Callable[[], None]]] = []
child_hooks: list[Callable[[], None]] = []


def on_fork(before: Callable[[], None], parent: Callable[[], None], child: Callable[[], None]) -> None:
    """Run before/parent/child around os.fork() (in registration order; parent and child reversed)."""
    fork_hooks.append((before, parent, child))


def at_fork_in_child(hook: Callable[[], None]) -> None:
    """Run hook in a forked child (used to empty keyed-tfm caches)."""
    child_hooks.append(hook)


def close_all() -> None:
    """Close every cached tfm and pooled op socket (atexit, tests)."""
    _tfm_cache.clear()
    for t in live_tfms():
        t.close()
