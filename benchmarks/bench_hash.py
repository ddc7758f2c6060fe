"""Hashing: kcapi_hashlib next to hashlib, and file hashing next to libkcapi's kcapi-dgst.

- sha256, sha1, sha512, sha3_256, blake2b: `new(data).digest()` of each size (64 B, 4 KiB, 1 MiB, 64 MiB by
  default), kcapi_hashlib against hashlib (OpenSSL/HACL*).
- file_digest sha256 of a file of each size >= 1 MiB: kcapi_hashlib.file_digest (splice file -> pipe ->
  kernel) against hashlib.file_digest, and as whole processes: libkcapi's
  `kcapi-dgst -c sha256` (Debian kcapi-tools; same kernel), coreutils' sha256sum and `kcapi-hashlib sum`.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import sys
import tempfile
from functools import partial
from typing import Any, Callable

import kcapi_hashlib
from benchmarks._common import Case

ALGORITHMS = ("sha256", "sha1", "sha512", "sha3_256", "blake2b")
FILE_ALGORITHM = "sha256"
FILE_MIN = 1 << 20

_data_cache: dict[int, bytes] = {}
_files: dict[int, str] = {}
_tmpdir: list[str] = []


def _data(size: int) -> bytes:
    data = _data_cache.get(size)
    if data is None:
        pattern = bytes(range(256))
        data = _data_cache[size] = (pattern * (size // 256 + 1))[:size]
    return data


def _directory(need: int) -> str:
    """A private temporary directory with room for `need` bytes: /dev/shm (memory) when it has the room,
    so the file case measures hashing rather than a disk."""
    if not _tmpdir:
        base = None
        try:
            st = os.statvfs("/dev/shm")
            if st.f_bavail * st.f_frsize > need * 2 and os.access("/dev/shm", os.W_OK):
                base = "/dev/shm"
        except OSError:
            pass
        path = tempfile.mkdtemp(prefix="kcapi-bench-", dir=base)
        _tmpdir.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _tmpdir[0]


def _file(size: int, total: int) -> str:
    path = _files.get(size)
    if path is None:
        path = os.path.join(_directory(total), f"data-{size}")
        chunk = _data(min(size, 1 << 20))
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
        _files[size] = path
    return path


def _digest(constructor: Callable[..., Any], data: bytes) -> bytes:
    return bytes(constructor(data).digest())


def _kcapi_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return bytes(kcapi_hashlib.file_digest(f, FILE_ALGORITHM).digest())


def _stdlib_file(path: str) -> bytes:
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # 3.11+
            return bytes(hashlib.file_digest(f, FILE_ALGORITHM).digest())
        h = hashlib.new(FILE_ALGORITHM)
        buf = bytearray(1 << 18)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                return h.digest()
            h.update(view[:n])


def cases(sizes: list[int]) -> list[Case]:
    out: list[Case] = []
    for name in ALGORITHMS:
        ours = getattr(kcapi_hashlib, name)
        theirs = getattr(hashlib, name)
        for size in sizes:
            data = _data(size)
            out.append(
                Case(
                    group="hash",
                    name=name,
                    size=size,
                    impls={"kcapi_hashlib": partial(_digest, ours, data), "hashlib": partial(_digest, theirs, data)},
                    setup=f"import kcapi_hashlib\ndata = bytes({size})\nnew = kcapi_hashlib.{name}",
                    op="new(data).digest()",
                )
            )
    file_sizes = [s for s in sizes if s >= FILE_MIN]
    for size in file_sizes:
        path = _file(size, sum(file_sizes))
        out.append(
            Case(
                group="hash",
                name=f"file_digest {FILE_ALGORITHM}",
                size=size,
                impls={"kcapi_hashlib": partial(_kcapi_file, path), "hashlib": partial(_stdlib_file, path)},
                setup=f"import kcapi_hashlib\npath = {path!r}",
                op=f"with open(path, 'rb') as f:\n    kcapi_hashlib.file_digest(f, {FILE_ALGORITHM!r}).digest()",
                external={
                    "kcapi-dgst": ["kcapi-dgst", "-c", FILE_ALGORITHM, "-i", path, "--hex"],
                    f"{FILE_ALGORITHM}sum": [f"{FILE_ALGORITHM}sum", path],
                    "kcapi-hashlib sum": [sys.executable, "-m", "kcapi_hashlib", "sum", "-a", FILE_ALGORITHM, path],
                },
            )
        )
    return out
