"""Hashing through algif_hash (crypto/algif_hash.c).

- send with MSG_MORE = update; send without = final; recv returns the digest and frees the state
  (hash_recvmsg). A recv while MSG_MORE is pending finalizes.
- accept() on an op socket clones the state only while the stream is open (hash_accept exports/imports
  it); a finalized op socket gives a fresh one. So digest() without finalizing = accept -> recv on the clone.
"""

from __future__ import annotations

import errno
import os
import weakref
from typing import Callable, Optional, Sequence

from . import core
from .core import (
    _MAX_SEND,
    F_SETPIPE_SZ,
    MSG_MORE,
    SPLICE_F_MORE,
    Buffer,
    KernelError,
    OpSocket,
    Tfm,
    _stats,
    kernel_error,
)
from .core import recv as _recv
from .core import send as _send
from .core import sendv as _sendv


def hash_oneshot(alg: Tfm, bufs: Sequence[Buffer], size: int) -> bytes:
    """Digest of the concatenation of bufs on a pooled op socket: one sendmsg + one recv in steady state."""
    op = alg.op()
    try:
        if len(bufs) == 1 and len(bufs[0]) < _MAX_SEND:
            _send(op, bufs[0], 0, alg)
        else:
            _sendv(op, bufs, 0, alg)
        out = _recv(op, size, alg)
    except BaseException:
        op.close()
        raise
    alg.release(op)
    return out


class HashStream:
    """An op socket holding a partial hash state in the kernel (every send so far had MSG_MORE)."""

    __slots__ = ("_alg", "_op", "_fork_clone", "__weakref__")

    def __init__(self, alg: Tfm, op: Optional[OpSocket] = None) -> None:
        self._alg = alg
        self._op: Optional[OpSocket] = op if op is not None else alg.op()
        self._fork_clone: Optional[OpSocket] = None
        _live_streams.add(self)

    def update(self, bufs: Sequence[Buffer]) -> None:
        op = self._live()
        try:
            if len(bufs) == 1 and len(bufs[0]) < _MAX_SEND:
                _send(op, bufs[0], MSG_MORE, self._alg)
            else:
                _sendv(op, bufs, MSG_MORE, self._alg)
        except BaseException:
            self.close()  # the kernel state is unknown now: never hash with it again
            raise

    def copy(self) -> HashStream:
        """accept() on an op socket with pending data clones its state (hash_accept: export/import)."""
        op = self._live()
        try:
            clone, _ = op.accept()
        except OSError as e:
            raise kernel_error(e, "accept", self._alg.alg_type, self._alg.name) from None
        _stats["accept"] += 1
        return HashStream(self._alg, clone)

    def peek(self, tail: Buffer, size: int) -> bytes:
        """Digest of state+tail without finalizing this stream: finalize a clone, then pool the clone."""
        op = self._live()
        try:
            clone, _ = op.accept()
        except OSError as e:
            raise kernel_error(e, "accept", self._alg.alg_type, self._alg.name) from None
        _stats["accept"] += 1
        try:
            if len(tail):
                _sendv(clone, [tail], 0, self._alg)
            # recv with MSG_MORE still pending finalizes (hash_recvmsg: crypto_ahash_final when ctx->more).
            out = _recv(clone, size, self._alg)
        except BaseException:
            clone.close()
            raise
        self._alg.release(clone)
        return out

    def splice_file(self, fd: int, offset: int, count: int) -> int:
        """Hash `count` bytes of file `fd` from `offset` by splice file -> pipe -> op socket (no copy
        through userspace). Returns the bytes hashed; 0 with nothing consumed if splice is refused before
        the first byte (the caller then copies). Errors after the first byte are fatal for this stream."""
        op = self._live()
        return _splice_into(op, fd, offset, count, self)

    def _live(self) -> OpSocket:
        op = self._op
        if op is None:
            raise ValueError(f"{self._alg.name} hash state was lost (an earlier kernel error); start a new object")
        return op

    def close(self) -> None:
        _live_streams.discard(self)
        op, self._op = self._op, None
        if op is not None:
            op.close()

    def __del__(self) -> None:
        try:
            op, self._op = self._op, None
            if op is not None:
                op.close()
        except Exception:
            pass


_live_streams: weakref.WeakSet[HashStream] = weakref.WeakSet()


# --- zero-copy file hashing -----------------------------------------------------------------------------


def _find_splice() -> Optional[Callable[..., int]]:
    if hasattr(os, "splice"):
        return os.splice
    # Python 3.9 has no os.splice: call libc's splice(2) through ctypes.
    import ctypes

    # CDLL(None) is the process's own symbol table, which has libc's splice (no ldconfig run).
    _libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(_libc, "splice"):
        _c_splice = _libc.splice
        _c_splice.restype = ctypes.c_ssize_t
        _c_splice.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_longlong),
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_longlong),
            ctypes.c_size_t,
            ctypes.c_uint,
        ]

        def _ctypes_splice(
            src: int, dst: int, count: int, offset_src: Optional[int] = None, offset_dst: None = None, flags: int = 0
        ) -> int:
            off = ctypes.c_longlong(offset_src) if offset_src is not None else None
            n = _c_splice(src, ctypes.byref(off) if off is not None else None, dst, None, count, flags)
            if n < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            return int(n)

        return _ctypes_splice
    return None


_splice_cache: list[Optional[Callable[..., int]]] = []


def _get_splice() -> Optional[Callable[..., int]]:
    if not _splice_cache:
        _splice_cache.append(_find_splice())
    return _splice_cache[0]

_PIPE_SIZE = 1 << 20
# splice() refusals that mean "this file/kernel/container can't splice here": fall back to copying.
_SPLICE_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP, errno.EBADF}


def _splice_into(op: OpSocket, fd: int, offset: int, count: int, stream: HashStream) -> int:
    splice = _get_splice()
    if splice is None:
        return 0
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pipe_size = 65536  # the default: 16 buffers of a page
        try:
            import fcntl

            pipe_size = fcntl.fcntl(w, F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:
            pass  # /proc/sys/fs/pipe-max-size or the user's pipe quota: keep the default
        done = 0
        while done < count:
            try:
                n = splice(fd, w, min(pipe_size, count - done), offset_src=offset + done)
            except OSError as e:
                if done == 0 and e.errno in _SPLICE_UNSUPPORTED:
                    return 0
                stream.close()
                raise
            _stats["splice"] += 1
            if n == 0:
                break  # EOF before count: the file shrank
            left = n
            while left:
                try:
                    # SPLICE_F_MORE on every chunk keeps the hash open (af_alg: MSG_MORE).
                    m = splice(r, op.fileno(), left, flags=SPLICE_F_MORE)
                except OSError as e:
                    stream.close()  # part of the file may have reached the kernel: the state is unknown
                    raise kernel_error(e, "splice", stream._alg.alg_type, stream._alg.name) from None
                _stats["splice"] += 1
                if m <= 0:
                    stream.close()
                    raise KernelError(errno.EIO, "splice into the op socket made no progress")
                left -= m
            done += n
        return done
    finally:
        os.close(r)
        os.close(w)


def _before_fork() -> None:
    # A child that went on hashing on an inherited op socket would corrupt the parent's stream, so each live
    # stream is cloned now (hash_accept exports the state under lock_sock: a consistent snapshot) and the
    # child switches to the clone; the parent closes the clones.
    for s in list(_live_streams):
        op = s._op
        if op is not None:
            try:
                s._fork_clone, _ = op.accept()
            except OSError:
                s._fork_clone = None


def _after_fork_parent() -> None:
    for s in list(_live_streams):
        clone, s._fork_clone = s._fork_clone, None
        if clone is not None:
            clone.close()


def _after_fork_child() -> None:
    for s in list(_live_streams):
        op, clone = s._op, s._fork_clone
        s._fork_clone = None
        s._op = clone  # None (stream lost) if the clone failed: the object then raises on use
        if op is not None:
            op.close()


core.on_fork(_before_fork, _after_fork_parent, _after_fork_child)
