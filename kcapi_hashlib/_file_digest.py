"""hashlib.file_digest, computed by the kernel: a regular file read through its own descriptor goes file -> pipe ->
kernel by splice(2) (HASH._splice_file, _afalg.hash's splice path), never through Python; everything else is read
with readinto() as hashlib.file_digest reads it.
"""

from __future__ import annotations

import io
import os
import stat
from typing import Any

from ._callable import as_builtin
from ._hashes import HASH, new

_SPLICE_MIN = 1 << 18  # below this, read() is as cheap as setting up a pipe


@as_builtin("kcapi_hashlib")
def file_digest(fileobj: Any, digest: Any, /, *, _bufsize: int = 2**18) -> Any:
    """Hash the contents of a file-like object. Returns a digest object.

    *fileobj* must be a file-like object opened for reading in binary mode. It accepts file objects from
    open(), io.BytesIO(), and SocketIO objects. For regular files the data goes file -> pipe -> kernel by
    splice(2), never through Python.

    *digest* must either be a hash algorithm name as a *str*, a hash constructor, or a callable that
    returns a hash object.
    """
    digestobj = new(digest) if isinstance(digest, str) else digest()

    if hasattr(fileobj, "getbuffer"):
        # io.BytesIO object, use zero-copy buffer
        digestobj.update(fileobj.getbuffer())
        return digestobj

    # Only binary files implement readinto().
    if not (hasattr(fileobj, "readinto") and hasattr(fileobj, "readable") and fileobj.readable()):
        raise ValueError(f"'{fileobj!r}' is not a file-like object in binary reading mode.")

    if isinstance(digestobj, HASH):
        _splice_rest(fileobj, digestobj)

    # binary file, socket.SocketIO object; also what splice left (nothing, or all where it was refused)
    buf = bytearray(_bufsize)  # Reusable buffer to reduce allocations.
    view = memoryview(buf)
    while True:
        size = fileobj.readinto(buf)
        if size is None:
            # A non-blocking file with nothing to read now. 3.14's hashlib raises this; 3.10-3.13's
            # hashes view[:None], the whole buffer, and loops forever: a wrong answer and a hang, never mirrored.
            raise BlockingIOError("I/O operation would block.")
        if size == 0:
            break  # EOF
        digestobj.update(view[:size])

    return digestobj


def _reads_its_descriptor(fileobj: Any) -> bool:
    """Whether reading fileobj reads its fileno() as it is: an io.FileIO, or an io.BufferedReader/BufferedRandom
    over one (what open(path, "rb") and "r+b" give). Exact types only: a subclass may override read. Anything
    else with a fileno() need not be that file's bytes: gzip/bz2/lzma readers answer the compressed file's
    descriptor, wrappers may transform. Those are read through readinto(), as hashlib.file_digest reads all."""
    if type(fileobj) is io.FileIO:
        return True
    return type(fileobj) in (io.BufferedReader, io.BufferedRandom) and type(fileobj.raw) is io.FileIO


def _splice_rest(fileobj: Any, h: HASH) -> None:
    """Splice a regular file from its logical position to its end into h, then seek fileobj to the end."""
    if not _reads_its_descriptor(fileobj):
        return
    try:
        fd = fileobj.fileno()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        pos = fileobj.tell()  # the logical position: a BufferedReader may have read ahead
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return
    count = st.st_size - pos
    if count < _SPLICE_MIN:
        return
    done = h._splice_file(fd, pos, count)
    if done:
        fileobj.seek(pos + done)
