"""Hashing through algif_hash (crypto/algif_hash.c).

- send with MSG_MORE = update; send without = final; recv returns the digest and frees the state
  (hash_recvmsg). A recv while MSG_MORE is pending finalizes.
- accept() on an op socket clones the state only while the stream is open (hash_accept exports/imports
  it); a finalized op socket gives a fresh one. So digest() without finalizing = accept -> recv on the clone.
"""

from __future__ import annotations

import threading
import weakref
from _thread import RLock as _RLock  # threading.RLock() is a Python function returning this C type
from itertools import compress, repeat
from typing import Any, Optional, Sequence

from . import core
from . import splice as _splice
from .core import (
    _MAX_SEND,
    MSG_MORE,
    Buffer,
    OpSocket,
    Tfm,
    _consume,
    kernel_error,
    nbytes,
)
from .core import count as _count
from .core import exchange as _exchange
from .core import recv as _recv
from .core import send as _send
from .core import sendv as _sendv

# Bytes a buffered stream keeps in userspace before it takes an op socket and streams (MSG_MORE): 1000 updates
# of 64 bytes cost no syscall until the digest.
FLUSH = 1 << 16
# add_bytes' lock-free path: bytes objects shorter than SMALL, at most PENDING_MAX of them (64 KiB) pending
# between two operations that take the stream's lock.
SMALL = 1024
PENDING_MAX = 64


def hash_oneshot(alg: Tfm, bufs: Sequence[Buffer], size: int) -> bytes:
    """Digest of the concatenation of bufs on a pooled op socket: one sendmsg + one recv in steady state.

    The op socket goes back to the pool only after its recv returned (the op is then finalized); on any
    exception, a signal handler's included, it is dropped instead and closes itself."""
    if len(bufs) == 1:
        return _exchange(alg, bufs[0], size)  # the pooled write and read
    return core.exchange_gathered(alg, bufs, size)


def mac_stream(name: str, key: Optional[Buffer] = None) -> HashStream:
    """An unbuffered stream of kernel hash `name` (keyed with `key` if given) for a mode's MAC: GCM's 'ghash'
    keyed with H, ChaCha20-Poly1305's 'poly1305' fed the one-time key first. A keyed tfm serves one stream and is
    not cached (H is per message); the op socket keeps it alive in the kernel, so its socket is closed at once.
    Raises AlgUnavailable where the kernel has no such hash (7.x has neither)."""
    if key is None:
        return HashStream(core.tfm("hash", name))
    t = core.keyed_tfm("hash", name, key)
    try:
        return HashStream(t)
    finally:
        t.close()


_END: Any = object()  # the bottom of the lists that the C-call idioms below pop from
_LOST: Any = object()  # HashStream._op of a stream whose kernel state is unknown (an interrupted operation)


class HashStream:
    """One hash computation: bytes not yet sent, the op socket holding the kernel's partial state (every send so
    far had MSG_MORE), and the lock that serializes every operation on both.

    `buffered` streams (hashlib objects) keep up to FLUSH bytes in userspace and take an op socket only when the
    data outgrows that; unbuffered ones (the cipher modes' MACs) stream every update. `pending`: small bytes
    appended without the lock (add_bytes; list.append is one C call, atomic with or without the GIL), which
    every operation first moves into the buffer (_absorb): a call sees every append that returned before it.

    Exceptions at any point: an operation that changes the kernel state first replaces _op with _LOST, and
    puts the op socket back only after the kernel call and the buffer bookkeeping are done. An exception in
    between (a signal handler's included) leaves _LOST: every later call raises ValueError, and the op socket,
    held by nothing, closes itself (its C finalizer; __del__ only makes that quiet). The lock is a
    threading.RLock taken only as `try: lock.acquire() ... finally: lock.release()`, the release inline,
    never by `with` (CPython 3.14 can skip a `with` block's __exit__ when a signal handler raises right after
    __enter__; the reasons for each part are in accounting.py), so it is released on every path.
    It is re-entrant so that a signal handler using the object while its own thread is inside an operation
    finds _busy set and raises RuntimeError instead of deadlocking. Operations that only read the state
    (digest, copy) clone it with accept() and never touch _op.
    """

    __slots__ = (
        "_alg", "_op", "_buf", "_buffered", "_digest", "_lock", "_busy", "_registered", "_fork_clone", "_generation",
        "pending", "__weakref__",
    )  # fmt: skip

    def __init__(self, alg: Tfm, *, buffered: bool = False, data: Optional[memoryview] = None) -> None:
        """`data`: a buffered stream's first bytes (a flat byte view): fewer than FLUSH go into its buffer here,
        where no other thread can see the object yet; more are its first update()."""
        self._alg = alg
        self._buffered = buffered
        self._buf = bytearray(data) if data is not None and buffered and data.nbytes < FLUSH else bytearray()
        self._digest: Optional[bytes] = None
        self._lock = _RLock()
        self._generation = _fork_generation[0]
        self._busy = False
        self._registered = False
        self._fork_clone: Optional[OpSocket] = None
        self._op: Any = None
        self.pending: list[bytes] = []  # add_bytes appends without the lock; _absorb takes them under it
        if not buffered:
            _register(self)
            self._op = alg.op()
        if data is not None and not self._buf:
            self.update((data,))

    @property
    def alg(self) -> Tfm:
        return self._alg

    def _locked(self) -> threading.RLock:
        """The object's lock, valid in this process. A stream with no kernel state yet (its data still in the
        userspace buffer) is not registered, so the fork hooks do not see it: in a forked child, its first call
        adopts it here, once (_adopt_lock)."""
        if self._generation != _fork_generation[0]:
            lock = _adopt_lock[0]
            try:  # not `with`: see accounting.py
                lock.acquire()
                if self._generation != _fork_generation[0]:
                    self._adopt_in_child()
            finally:
                try:
                    lock.release()
                except RuntimeError as e:  # un-acquired: see accounting.py
                    if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                        raise  # a signal handler's, raised after release() returned
        return self._lock

    def _adopt_in_child(self) -> None:
        # A lock another thread held at fork() can never be released here (that thread does not exist in the
        # child): the object was inside a call, its buffer perhaps half-updated, so it is marked lost (raises on
        # use) under a new lock. A lock nobody held means no call was in progress: the state is whole. (The
        # forking thread itself holding it would be a call of its own in progress: RLock takes it again.)
        lock = self._lock
        free = False
        try:  # a handler may raise right after acquire() returned: the finally then gives the lock back
            free = lock.acquire(blocking=False)
        finally:
            try:
                lock.release()  # ours (free), or RuntimeError: held by a thread of the parent's
            except RuntimeError as e:  # un-acquired, or a handler's (see accounting.py)
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise
        if not free:
            self._lock = threading.RLock()
            self._busy = False
            self._op = _LOST
        self._generation = _fork_generation[0]

    def _not_busy(self) -> None:
        """Called under the lock, before an operation's try block. The lock is an RLock, so a signal handler that
        uses this object while the same thread is inside an operation on it gets here instead of deadlocking;
        interleaving the two would give wrong answers. Each operation sets _busy as the first statement of its
        try block and only then reads the state (_state()): a handler that runs before that point finishes its
        whole operation first, and the outer one then reads the state the handler left, never a stale copy."""
        if self._busy:
            raise RuntimeError(
                f"{self._alg.name} hash object used while an operation on it is in progress in this thread "
                "(from a signal handler?)"
            )

    def _state(self) -> Optional[OpSocket]:
        """The op socket (None: nothing sent yet), or raise if the state is unusable. Called under the lock,
        with _busy set."""
        op = self._op
        if op is _LOST:
            raise ValueError(
                f"{self._alg.name} hash state was lost (an earlier operation on it was interrupted or failed); "
                "start a new object"
            )
        return op  # type: ignore[no-any-return]

    def _absorb(self) -> None:
        """Move `pending` into the buffer in order (under the lock, _busy set, before the operation reads _op):
        a copy of the first k, then their deletion (appends meanwhile go after them), the state _LOST in between.
        A buffer that reaches FLUSH goes to the kernel, as in update(), if registered (see _register_pending)."""
        pending = self.pending
        k = len(pending)
        if k:
            op = self._op
            if op is _LOST:
                return  # the operation raises (_state); the bytes stay pending
            self._op = _LOST
            self._digest = None
            part = pending[:k]
            del pending[:k]
            buf = self._buf
            buf += b"".join(part)
            if self._registered and len(buf) >= FLUSH:
                if op is None:
                    op = self._alg.op()
                _send(op, buf, MSG_MORE, self._alg)  # below FLUSH + what was pending: one send
                buf.clear()
            self._op = op

    def _register_pending(self) -> None:
        """Before the lock, as update() registers: a stream whose pending bytes take its buffer to FLUSH (then
        _absorb gives them to the kernel; appends this sum misses are the next operation's)."""
        if len(self._buf) + sum(map(len, self.pending)) >= FLUSH:
            _register(self)

    def absorb(self) -> None:
        """Move `pending` into the buffer now, unless an operation of this thread is in progress (a signal
        handler's update: that one's next operation moves it). A lost stream drops it and raises."""
        if not self._registered:
            self._register_pending()
        lock = self._locked()
        try:  # not `with`: see accounting.py
            lock.acquire()
            if not self._busy:
                try:
                    self._busy = True
                    if self._op is _LOST:
                        del self.pending[:]
                        self._state()  # raises
                    self._absorb()
                finally:
                    self._busy = False
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def add_bytes(self, data: bytes) -> None:
        """update_view for a bytes object. One under SMALL bytes is appended to `pending` (kept as given: one C
        call, no lock), and the append that makes it PENDING_MAX long absorbs it; a lost stream, or one a forked
        child has not adopted yet, goes to update_view, which raises or adopts it (_op is read without the lock:
        an append racing with another thread's failing operation is lost with the state)."""
        if len(data) < SMALL and self._op is not _LOST and self._generation == _fork_generation[0]:
            pending = self.pending
            pending.append(data)
            if len(pending) >= PENDING_MAX:
                self.absorb()
        else:
            self.update_view(memoryview(data))

    def update_view(self, view: memoryview) -> None:
        """update((view,)) for one flat byte view (hashlib objects): the common case, bytes that stay in a
        buffered stream's buffer, done here directly under the same lock, _busy and state rules; anything else
        (a flush to the kernel, an unbuffered stream, the first call in a forked child) goes to update().
        Whether the bytes fit is decided before the lock, as update() decides whether to register: a stream
        about to get kernel state is registered (fork hooks see it) before its lock is taken. Inside, bytes that
        no longer fit stay in the buffer while the stream is unregistered, as in update()."""
        n = view.nbytes
        if self.pending and not self._registered:
            self._register_pending()
        if self._buffered and self._generation == _fork_generation[0] and len(self._buf) + n < FLUSH:
            lock = self._lock
            try:  # not `with`: see accounting.py
                lock.acquire()
                if not self._busy:
                    try:
                        self._busy = True
                        if self._op is not _LOST:
                            if self.pending:
                                self._absorb()
                            buf = self._buf
                            if len(buf) + n < FLUSH or not self._registered:
                                self._digest = None
                                buf += view
                                return
                    finally:
                        self._busy = False
            finally:
                try:
                    lock.release()
                except RuntimeError as e:  # un-acquired: see accounting.py
                    if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                        raise  # a signal handler's, raised after release() returned
        self.update((view,))

    def update(self, bufs: Sequence[Buffer]) -> None:
        """Add the bytes of bufs (flat byte views or bytes) to the hash."""
        size = sum(map(nbytes, bufs))
        if not size:
            return
        if not self._registered and (not self._buffered or len(self._buf) + size >= FLUSH):
            _register(self)  # before the lock: a fork hook holding the registry's lock waits for ours
        elif self.pending and not self._registered:
            self._register_pending()
        lock = self._locked()
        try:  # not `with`: see accounting.py
            lock.acquire()
            self._not_busy()
            try:
                self._busy = True
                if self.pending:
                    self._absorb()
                op = self._state()
                self._digest = None
                buf = self._buf
                if self._buffered and (len(buf) + size < FLUSH or not self._registered):
                    for b in bufs:
                        buf += b
                    return
                self._op = _LOST
                if op is None:
                    op = self._alg.op()
                # One gathered sendmsg of the buffer and the new data: no copy of large inputs.
                parts = (buf, *bufs) if buf else bufs
                if len(parts) == 1 and nbytes(parts[0]) < _MAX_SEND:
                    _send(op, parts[0], MSG_MORE, self._alg)
                else:
                    _sendv(op, parts, MSG_MORE, self._alg)
                buf.clear()
                self._op = op
            finally:
                self._busy = False
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def peek(self, tail: Buffer, size: int) -> bytes:
        """Digest of state+tail without finalizing this stream: finalize a clone, then pool the clone."""
        if self.pending and not self._registered:
            self._register_pending()
        lock = self._locked()
        try:  # not `with`: see accounting.py
            lock.acquire()
            self._not_busy()
            try:
                self._busy = True
                if self.pending:
                    self._absorb()
                op = self._state()
                return self._peek(op, tail, size)
            finally:
                self._busy = False
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def _peek(self, op: Optional[OpSocket], tail: Buffer, size: int) -> bytes:
        alg = self._alg
        buf = self._buf
        if op is None:
            return hash_oneshot(alg, (buf, tail) if nbytes(tail) else (buf,), size)
        clone = self._clone(op)
        parts = [b for b in (buf, tail) if nbytes(b)]
        if parts:
            _sendv(clone, parts, 0, alg)
        # recv with MSG_MORE still pending finalizes (hash_recvmsg: crypto_ahash_final when ctx->more).
        out = _recv(clone, size, alg)
        alg.release(clone)
        return out

    def digest(self, size: int) -> bytes:
        """Digest of everything so far (cached until the next update); the stream stays open."""
        if self.pending and not self._registered:
            self._register_pending()
        lock = self._lock if self._generation == _fork_generation[0] else self._locked()
        try:  # not `with`: see accounting.py
            lock.acquire()
            if self._busy:
                self._not_busy()  # raises
            try:
                self._busy = True
                if self.pending:
                    self._absorb()
                op = self._op
                if op is _LOST:
                    self._state()  # raises
                out = self._digest
                if out is None:
                    buf = self._buf
                    if op is None and len(buf) < _MAX_SEND:  # all in the buffer: one send and one recv
                        out = _exchange(self._alg, buf, size)
                    else:
                        out = self._peek(op, b"", size)
                    self._digest = out
                return out
            finally:
                self._busy = False
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def _clone(self, op: OpSocket) -> OpSocket:
        """accept() on an op socket with pending data clones its state (hash_accept: export/import)."""
        try:
            clone = op.accept()
        except OSError as e:
            raise kernel_error(e, "accept", self._alg.alg_type, self._alg.name) from None
        _count(self._alg, "accept")
        return clone

    def copy(self) -> HashStream:
        new = HashStream(self._alg, buffered=True)
        new._buffered = self._buffered
        _register(new)  # before any lock (see update): it may get kernel state below
        if self.pending and not self._registered:
            self._register_pending()
        lock = self._locked()
        try:  # not `with`: see accounting.py
            lock.acquire()
            self._not_busy()
            try:
                self._busy = True
                if self.pending:
                    self._absorb()
                op = self._state()
                new._buf[:] = self._buf
                new._digest = self._digest
                if op is not None:
                    new._op = self._clone(op)
            finally:
                self._busy = False
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        return new

    def splice_file(self, fd: int, offset: int, count: int) -> int:
        """Hash `count` bytes of file `fd` from `offset` by splice file -> pipe -> op socket (no copy
        through userspace). Returns the bytes hashed; 0 with nothing consumed if splice is refused before
        the first byte (the caller then copies). Errors after the first byte are fatal for this stream."""
        _register(self)
        lock = self._locked()
        try:  # not `with`: see accounting.py
            lock.acquire()
            self._not_busy()
            try:
                self._busy = True
                if self.pending:
                    self._absorb()
                op = self._state()
                self._digest = None
                self._op = _LOST
                if op is None:
                    op = self._alg.op()
                if self._buf:
                    _sendv(op, (self._buf,), MSG_MORE, self._alg)
                    self._buf.clear()
                done = _splice.splice_into(op, fd, offset, count, self._alg)
                self._op = op
                return done
            finally:
                self._busy = False
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned

    def __del__(self) -> None:
        # The quiet path for a dropped object (the op socket's C finalizer would close it too, with a
        # ResourceWarning); nothing depends on this running to the end.
        op = getattr(self, "_op", None)
        if isinstance(op, OpSocket):
            op.close()

    def close(self) -> None:
        """Drop the kernel state now (the object raises from then on)."""
        lock = self._locked()
        try:  # not `with`: see accounting.py
            lock.acquire()
            op, self._op = self._op, _LOST
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
        if isinstance(op, OpSocket):
            op.close()


# --- fork -----------------------------------------------------------------------------------------------
# A child that went on hashing on an inherited op socket would corrupt the parent's stream, and the other way
# round. So before fork() every stream that has kernel state is locked (no update is half done: "updates that
# returned before fork()" are exactly what the kernel and the buffer hold) and cloned (hash_accept exports the
# state under lock_sock: a consistent snapshot); the child switches to the clones, the parent closes them.
# Streams register the first time they get kernel state, under _gate, which the before-fork hook holds from
# its snapshot of the registry until after fork: no stream can get kernel state unseen in between.
#
# Which locks the hook holds is recorded in the same C call that acquires them (list.extend over
# compress/starmap), so an exception from a signal handler inside the hook cannot leave a lock held but
# unrecorded; the after-fork hooks release exactly the recorded ones. A stream whose lock could not be taken
# in _FORK_WAIT seconds is not snapshotted: in the child it gets a fresh lock and raises on use.

_gate = threading.RLock()  # re-entrant: a signal handler may register a stream while this thread holds it
# Forks seen by this process (the child's hook counts one more), and the lock that lets one thread adopt an
# unregistered stream in a child (HashStream._locked); both replaced in the child, never held across fork().
# Every lock here is an RLock taken by try/acquire/finally with the release inline (accounting.py says why):
# an RLock's release() by a thread that does not hold it raises RuntimeError, which is how such a finally
# block tells an acquire() a signal handler interrupted while it waited (nothing to release) from one that
# returned; a plain Lock's release() would free another thread's hold instead.
_fork_generation = [0]
_adopt_lock = [threading.RLock()]
_live: set[weakref.ref[HashStream]] = set()
_LOCK_ACQUIRE = type(_gate).acquire
_LOCK_RELEASE = type(_gate).release
_FORK_WAIT = 10.0
_held: list[Any] = [_END]
_forking: list[HashStream] = []


def _register(s: HashStream) -> None:
    if not s._registered:
        lock = _gate
        try:  # not `with`: see accounting.py
            lock.acquire()
            _live.add(weakref.ref(s, _live.discard))
            s._registered = True
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned


def _acquire_recorded(held: list[Any], locks: list[Any]) -> None:
    held.extend(compress(locks, map(_LOCK_ACQUIRE, locks, repeat(True), repeat(_FORK_WAIT))))


def _release_recorded(held: list[Any]) -> None:
    _consume(map(_LOCK_RELEASE, iter(held.pop, _END)))


def _before_fork() -> None:
    global _held
    held = _held = [_END]
    _forking.clear()
    _acquire_recorded(held, [_gate])
    streams = [s for s in map(_deref, list(_live)) if s is not None]
    _forking.extend(streams)
    _acquire_recorded(held, [s._lock for s in streams])
    for s in streams:
        op = s._op
        if isinstance(op, OpSocket) and s._lock in held and not s._busy:
            try:
                s._fork_clone = op.accept()
            except OSError:
                s._fork_clone = None  # the child's copy of this stream then raises on use


def _deref(ref: weakref.ref[HashStream]) -> Optional[HashStream]:
    return ref()


def _after_fork_parent() -> None:
    for s in _forking:
        clone, s._fork_clone = s._fork_clone, None
        if clone is not None:
            clone.close()
    _forking.clear()
    _release_recorded(_held)


def _after_fork_child() -> None:
    _adopt_lock[0] = threading.RLock()
    _fork_generation[0] += 1
    held = _held
    for s in _forking:
        s._generation = _fork_generation[0]  # handled here: not to be adopted again
        op, clone = s._op, s._fork_clone
        s._fork_clone = None
        if s._lock not in held:
            s._lock = threading.RLock()  # held by a thread that does not exist here
            s._op = _LOST if op is not None else None
        elif isinstance(op, OpSocket):
            s._op = clone if clone is not None else _LOST
        if isinstance(op, OpSocket):
            op.close()  # the child's descriptor only: the parent's socket stays open
    _forking.clear()
    _release_recorded(held)


core.on_fork(_before_fork, _after_fork_parent, _after_fork_child)
