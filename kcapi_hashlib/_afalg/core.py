"""The one package that talks to the kernel: every AF_ALG syscall and errno translation lives in it.

Public modules never touch sockets; they call the small API below. The shape of an AF_ALG user:

    tfm = socket(AF_ALG, SOCK_SEQPACKET); tfm.bind((type, name))   # a transform ("tfm") socket
    tfm.setsockopt(SOL_ALG, ALG_SET_KEY, key)                       # keyed algorithms, before accept
    op, _ = tfm.accept()                                            # an operation socket
    op.sendmsg(...); op.recv(...)                                   # the work

This package splits that work the way the kernel does: core (crypto/af_alg.c: sockets, keys, errors,
fork), hash (crypto/algif_hash.c), skcipher, aead and rng (crypto/algif_*.c). Kernel behaviour relied on is
cited by the kernel function that has it (see also ../shared/AF_ALG-NOTES.md in the project's workspace).
"""

from __future__ import annotations

import atexit
import errno
import os
import socket
import threading
import weakref
from typing import Any, Callable, Optional, Sequence, Union

Buffer = Union[bytes, bytearray, memoryview]

AF_ALG = 38
SOL_ALG = 279
ALG_SET_KEY = 1
ALG_SET_IV = 2
ALG_SET_OP = 3
ALG_SET_AEAD_ASSOCLEN = 4
ALG_SET_AEAD_AUTHSIZE = 5
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

# Every kernel operation made (bind, accept, send, recv, splice); tests read it to prove they reached AF_ALG.
_stats = {"bind": 0, "accept": 0, "send": 0, "recv": 0, "splice": 0}


def stats() -> dict[str, int]:
    """How many AF_ALG operations this process made, by kind (a copy)."""
    return dict(_stats)


def kernel_operations() -> int:
    return sum(_stats.values())


# --- errors ---------------------------------------------------------------------------------------------

_RESTRICT = "/proc/sys/crypto/af_alg_restrict"


def _restrict_level() -> Optional[str]:
    try:
        with open(_RESTRICT) as f:
            return f.read().strip()
    except OSError:
        return None


def explain(err: int, step: str, alg_type: str, alg_name: str) -> str:
    """A sentence saying why the kernel refused `step` for (alg_type, alg_name), and what to do."""
    what = f"{alg_type} algorithm {alg_name!r}"
    level = _restrict_level()
    restricted = f" (/proc/sys/crypto/af_alg_restrict is {level})" if level not in (None, "0") else ""
    if err == errno.EAFNOSUPPORT:
        return (
            "this kernel has no AF_ALG sockets: socket(AF_ALG) failed with EAFNOSUPPORT (kernel built without "
            "CONFIG_CRYPTO_USER_API, the af_alg module is missing or refused, or af_alg_restrict=2)" + restricted
        )
    if err in (errno.EPERM, errno.EACCES):
        return (
            f"AF_ALG is blocked for this process: {step}() failed with {errno.errorcode[err]} (a seccomp "
            "profile such as Docker's or containerd's default, an LSM policy, or a missing capability under "
            "af_alg_restrict)" + restricted
        )
    if err == errno.ENOENT:
        extra = (
            "; unprivileged processes may bind only the restricted allowlist" if restricted else ""
        )
        return (
            f"the kernel cannot bind {what}: ENOENT (not built into this kernel, its module is missing or "
            f"refused/blacklisted, or not allowed by af_alg_restrict){restricted}{extra}"
        )
    if err == errno.ENOKEY:
        return f"{what} needs a key and none was set: ENOKEY"
    if err == errno.EBUSY:
        return f"{what}: {step}() failed with EBUSY (the tfm already has operation sockets)"
    if err in (errno.ENOMEM, errno.ENOBUFS):
        return (
            f"{what}: {step}() failed with {errno.errorcode[err]} (the kernel's socket option memory, "
            "net.core.optmem_max, or memory is exhausted)"
        )
    name = errno.errorcode.get(err, str(err))
    return f"{what}: {step}() failed with {name}: {os.strerror(err)}"


class AlgUnavailable(OSError):
    """The kernel cannot serve an algorithm. errno is the kernel's; str() says exactly why."""

    def __init__(self, err: int, step: str, alg_type: str, alg_name: str) -> None:
        super().__init__(err, explain(err, step, alg_type, alg_name))
        self.step = step
        self.alg_type = alg_type
        self.alg_name = alg_name

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.errno, self.step, self.alg_type, self.alg_name))


class KernelError(OSError):
    """A kernel operation failed after the algorithm was bound (ENOKEY, EBADMSG, EINVAL, short send, ...)."""


def kernel_error(e: OSError, step: str, alg_type: str, alg_name: str) -> KernelError:
    err = e.errno if e.errno is not None else errno.EIO
    return KernelError(err, explain(err, step, alg_type, alg_name))


# --- transform sockets ----------------------------------------------------------------------------------


def _socket() -> socket.socket:
    # Python sockets are close-on-exec (non-inheritable) by default since 3.4 (SOCK_CLOEXEC at creation).
    return socket.socket(AF_ALG, socket.SOCK_SEQPACKET, 0)


class OpSocket:
    """An operation socket: the accepted descriptor, with Python's socket object made only when needed.

    CPython's socket(fileno=fd) calls getsockname() on every new socket object (to validate the descriptor):
    one syscall per accept() that buys AF_ALG nothing. Plain sends and receives go straight to the descriptor
    instead: write(2)/writev(2) and read(2)/readv(2) on a socket are sendmsg/recvmsg without flags
    (net/socket.c: sock_write_iter, sock_read_iter; the MSG_EOR they add for SEQPACKET is ignored by
    hash_sendmsg and af_alg_sendmsg). The socket object exists only for flags (MSG_MORE), control messages,
    socket options and accept().
    """

    __slots__ = ("_fd", "_sock", "__weakref__")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._sock: Optional[socket.socket] = None

    @property
    def sock(self) -> socket.socket:
        sock = self._sock
        if sock is None:
            if self._fd < 0:
                raise OSError(errno.EBADF, "operation socket is closed")
            sock = self._sock = socket.socket(AF_ALG, socket.SOCK_SEQPACKET, 0, self._fd)
        return sock

    def fileno(self) -> int:
        return self._fd

    def send(self, data: Buffer, flags: int = 0) -> int:
        return os.write(self._fd, data) if not flags else self.sock.send(data, flags)

    def sendmsg(
        self, buffers: Sequence[Buffer], ancdata: Sequence[tuple[int, int, Buffer]] = (), flags: int = 0
    ) -> int:
        if not ancdata and not flags:
            return os.writev(self._fd, buffers)
        return self.sock.sendmsg(buffers, ancdata, flags)

    def recv(self, size: int, flags: int = 0) -> bytes:
        return os.read(self._fd, size) if not flags else self.sock.recv(size, flags)

    def recv_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int:
        if flags:
            return self.sock.recv_into(buffer, nbytes, flags)
        view = memoryview(buffer)
        return os.readv(self._fd, [view[:nbytes] if nbytes else view])

    def recvmsg_into(
        self, buffers: Sequence[Buffer], ancbufsize: int = 0, flags: int = 0
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]:
        return self.sock.recvmsg_into(buffers, ancbufsize, flags)

    def accept(self) -> tuple[OpSocket, Any]:
        """accept() on an op socket (a hash clone); the new descriptor gets no socket object yet."""
        fd, addr = self.sock._accept()  # type: ignore[attr-defined]
        return OpSocket(fd), addr

    def getsockopt(self, level: int, option: int) -> int:
        return self.sock.getsockopt(level, option)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.sock.setsockopt(level, option, value)

    def close(self) -> None:
        sock, fd = self._sock, self._fd
        self._sock, self._fd = None, -1
        if sock is not None:
            sock.close()
        elif fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        if self._fd >= 0:
            self.close()


class Tfm:
    """A bound (and possibly keyed) transform socket, and a pool of its idle op sockets.

    Op sockets keep the tfm alive in the kernel (af_alg_accept takes a reference), so closing the tfm
    socket while op sockets live is safe.
    """

    __slots__ = ("alg_type", "name", "_sock", "_idle", "__weakref__")

    def __init__(
        self,
        alg_type: str,
        name: str,
        key: Optional[Buffer] = None,
        authsize: Optional[int] = None,
    ) -> None:
        self.alg_type = alg_type
        self.name = name
        self._idle: list[OpSocket] = []
        try:
            sock = _socket()
        except OSError as e:
            raise AlgUnavailable(e.errno or errno.EIO, "socket", alg_type, name) from None
        try:
            try:
                sock.bind((alg_type, name))
            except OSError as e:
                raise AlgUnavailable(e.errno or errno.EIO, "bind", alg_type, name) from None
            _stats["bind"] += 1
            # Key and authsize go on the tfm before any accept: the op socket has no setsockopt
            # (EOPNOTSUPP) and alg_setsockopt answers EBUSY once a keyed op socket exists.
            if key is not None:
                try:
                    sock.setsockopt(SOL_ALG, ALG_SET_KEY, bytes(key))
                except OSError as e:
                    raise kernel_error(e, "setsockopt(ALG_SET_KEY)", alg_type, name) from None
            if authsize is not None:
                try:
                    sock.setsockopt(SOL_ALG, ALG_SET_AEAD_AUTHSIZE, None, authsize)
                except OSError as e:
                    raise kernel_error(e, "setsockopt(ALG_SET_AEAD_AUTHSIZE)", alg_type, name) from None
        except BaseException:
            sock.close()
            raise
        self._sock: Optional[socket.socket] = sock
        _live_tfms.add(self)

    def accept(self) -> OpSocket:
        """A new op socket (never from the pool)."""
        sock = self._sock
        if sock is None:
            raise ValueError(f"{self.alg_type} transform {self.name!r} is closed")
        try:
            # _accept() gives the bare descriptor (accept4 with SOCK_CLOEXEC); see OpSocket for why.
            fd, _ = sock._accept()  # type: ignore[attr-defined]
        except OSError as e:
            raise kernel_error(e, "accept", self.alg_type, self.name) from None
        _stats["accept"] += 1
        return OpSocket(fd)

    def op(self) -> OpSocket:
        """An op socket with no pending state: an idle pooled one, else a fresh accept()."""
        try:
            return self._idle.pop()
        except IndexError:
            return self.accept()

    def release(self, op: OpSocket) -> None:
        """Give back an op socket whose operation has been finalized (recv done)."""
        if len(self._idle) < _POOL_MAX and self._sock is not None:
            self._idle.append(op)
        else:
            op.close()

    def drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for op in idle:
            op.close()

    def close(self) -> None:
        self.drop_idle()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


_live_tfms: weakref.WeakSet[Tfm] = weakref.WeakSet()
_tfm_cache: dict[tuple[str, str], Tfm] = {}
_probe_cache: dict[tuple[str, str], Optional[AlgUnavailable]] = {}
_cache_lock = threading.Lock()


def tfm(alg_type: str, name: str) -> Tfm:
    """The shared unkeyed tfm for (alg_type, name), bound once per process; raises AlgUnavailable."""
    key = (alg_type, name)
    t = _tfm_cache.get(key)
    if t is not None:
        return t
    with _cache_lock:
        t = _tfm_cache.get(key)
        if t is None:
            failure = _probe_cache.get(key)
            if failure is not None:
                raise failure
            try:
                t = Tfm(alg_type, name)
            except AlgUnavailable as e:
                _probe_cache[key] = e
                raise
            _probe_cache[key] = None
            _tfm_cache[key] = t
        return t


def probe(alg_type: str, name: str) -> Optional[AlgUnavailable]:
    """None if the kernel can bind (alg_type, name), else why not. Binds at most once per process."""
    try:
        tfm(alg_type, name)
    except AlgUnavailable as e:
        return e
    return None


def af_alg_status() -> Optional[AlgUnavailable]:
    """None if socket(AF_ALG) works in this process, else why not."""
    try:
        _socket().close()
    except OSError as e:
        return AlgUnavailable(e.errno or errno.EIO, "socket", "any", "*")
    return None


def keyed_tfm(alg_type: str, name: str, key: Buffer, authsize: Optional[int] = None) -> Tfm:
    """A new private tfm carrying `key` (one tfm per key: the key is fixed once op sockets exist)."""
    failure = _probe_cache.get((alg_type, name))
    if failure is not None:
        raise failure
    return Tfm(alg_type, name, key, authsize)


# --- sending and receiving ------------------------------------------------------------------------------


def send(op: OpSocket, data: Buffer, flags: int, alg: Tfm) -> None:
    """One sendmsg of data (< _MAX_SEND bytes) or a list of buffers; a short count is fatal."""
    try:
        n = op.send(data, flags)
    except OSError as e:
        raise kernel_error(e, "send", alg.alg_type, alg.name) from None
    _stats["send"] += 1
    if n != len(data):
        raise KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: short send ({n} of {len(data)} bytes)")


def sendv(op: OpSocket, bufs: Sequence[Buffer], flags: int, alg: Tfm) -> None:
    """Send several buffers, gathered into as few sendmsg calls as _MAX_SEND allows."""
    pending = [memoryview(b).cast("B") for b in bufs if len(b)]
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
        _stats["send"] += 1
        if n != size:
            raise KernelError(
                errno.EIO, f"{alg.alg_type} {alg.name!r}: short send ({n} of {size} bytes)"
            )


def recv(op: OpSocket, size: int, alg: Tfm) -> bytes:
    try:
        out = op.recv(size)
    except OSError as e:
        raise kernel_error(e, "recv", alg.alg_type, alg.name) from None
    _stats["recv"] += 1
    return out


# --- fork -----------------------------------------------------------------------------------------------
# After fork, parent and child share every kernel object (AF_ALG-NOTES: "After fork, parent and child share
# the same kernel objects"). Each op-socket owner (hash streams, cipher objects) registers hooks here.

_fork_hooks: list[tuple[Callable[[], None], Callable[[], None], Callable[[], None]]] = []
_child_hooks: list[Callable[[], None]] = []


def on_fork(before: Callable[[], None], parent: Callable[[], None], child: Callable[[], None]) -> None:
    """Run before/parent/child around os.fork() (in registration order; parent and child reversed)."""
    _fork_hooks.append((before, parent, child))


def at_fork_in_child(hook: Callable[[], None]) -> None:
    """Run hook in a forked child (used to empty keyed-tfm caches)."""
    _child_hooks.append(hook)


def _before_fork() -> None:
    for before, _, _ in _fork_hooks:
        before()


def _after_fork_parent() -> None:
    for _, parent, _ in reversed(_fork_hooks):
        parent()


def _after_fork_child() -> None:
    for _, _, child in reversed(_fork_hooks):
        child()
    # Idle pooled op sockets are shared with the parent: the child must never use them.
    for t in list(_live_tfms):
        t.drop_idle()
    for hook in _child_hooks:
        hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child
    )


def close_all() -> None:
    """Close every cached tfm and pooled op socket (atexit, tests)."""
    with _cache_lock:
        for t in list(_live_tfms):
            t.close()
        _tfm_cache.clear()


def _forget_at_exit() -> None:
    """At interpreter exit, let go of every cached tfm and pooled op socket without close().

    The kernel releases a process's descriptors when it exits; closing each one first is a syscall per
    tfm spent for nothing (the keyed caches hold dozens), and leaving them to garbage collection during
    teardown would close them one by one too. Detaching drops Python's ownership (no ResourceWarning).
    """
    for t in list(_live_tfms):
        idle, t._idle = t._idle, []
        for op in idle:
            op._fd = -1
            if op._sock is not None:
                op._sock.detach()
        sock, t._sock = t._sock, None
        if sock is not None:
            sock.detach()


atexit.register(_forget_at_exit)
