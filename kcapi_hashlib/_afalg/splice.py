"""Zero-copy hashing of regular files: splice file -> pipe -> hash op socket (fs/splice.c into
crypto/af_alg.c's splice_read path), each chunk with SPLICE_F_MORE so the hash stays open. Only ever into hash op
sockets (HashStream.splice_file): never into AEAD or skcipher sockets."""

from __future__ import annotations

import errno
import os
from itertools import chain, starmap
from typing import Any, Callable, Optional

from .core import (
    F_SETPIPE_SZ,
    SPLICE_F_MORE,
    KernelError,
    OpSocket,
    Tfm,
    _consume,
    kernel_error,
)
from .core import count as _count

_END: Any = object()  # the bottom of the list the pipe's descriptors are popped from


def _find_splice() -> Optional[Callable[..., int]]:
    return getattr(os, "splice", None)  # os.splice: Linux, Python 3.10+ (None where the libc lacks splice)


_splice_cache: list[Optional[Callable[..., int]]] = []


def _get_splice() -> Optional[Callable[..., int]]:
    if not _splice_cache:
        _splice_cache.append(_find_splice())
    return _splice_cache[0]


_PIPE_SIZE = 1 << 20
# splice() refusals that mean "this file/kernel/container can't splice here": fall back to copying.
_SPLICE_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP, errno.EBADF}


def splice_into(op: OpSocket, fd: int, offset: int, count: int, alg: Tfm) -> int:
    splice = _get_splice()
    if splice is None:
        return 0
    pipe: list[Any] = [_END]
    # The pipe's two descriptors land in `pipe` inside the C call that made them and are popped and closed in
    # one (see core, "descriptor ownership").
    pipe.extend(chain.from_iterable(starmap(os.pipe2, ((os.O_CLOEXEC,),))))
    r, w = pipe[1], pipe[2]
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
                raise
            _count(alg, "splice")  # file -> pipe: its bytes are counted when they reach the op socket
            if n == 0:
                break  # EOF before count: the file shrank
            left = n
            while left:
                try:
                    # SPLICE_F_MORE on every chunk keeps the hash open (af_alg: MSG_MORE).
                    m = splice(r, op.fileno(), left, flags=SPLICE_F_MORE)
                except OSError as e:
                    # part of the file may have reached the kernel: the caller's stream stays _LOST
                    raise kernel_error(e, "splice", alg.alg_type, alg.name) from None
                _count(alg, "splice", max(m, 0))
                if m <= 0:
                    raise KernelError(errno.EIO, "splice into the op socket made no progress")
                left -= m
            done += n
        return done
    finally:
        _consume(map(os.close, iter(pipe.pop, _END)))
