"""kcapi_hashlib.file_digest on file objects whose fileno() is not the stream they read, against
hashlib.file_digest: decompressing readers (gzip, bz2, lzma: fileno() is the compressed file), archive members
(zipfile, tarfile), a wrapper that transforms what it reads, a BufferedReader subclass that overrides read.
file_digest splices a descriptor only where reading the object reads that descriptor as it is (io.FileIO,
io.BufferedReader/BufferedRandom over one); the plain files here check that this path still gives hashlib's
digest from any position."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

import kcapi_hashlib
from tests.support import requires

pytestmark = requires.hash_names("sha256")

# Incompressible, so each compressed file is as large as its content: far above the size from which file_digest
# splices (1 MiB > 256 KiB), i.e. a descriptor taken for the stream would be spliced.
SIZE = 1 << 20


@pytest.fixture(scope="module")
def content() -> bytes:
    return os.urandom(SIZE)


def _hashlib_file_digest(f: Any, name: str, _bufsize: int = 2**18) -> Any:
    """hashlib.file_digest (3.11+); on 3.10 its loop: readinto a reused buffer until EOF."""
    stdlib = getattr(hashlib, "file_digest", None)
    if stdlib is not None:
        return stdlib(f, name, _bufsize=_bufsize)
    h = hashlib.new(name)
    buf = bytearray(_bufsize)
    while n := f.readinto(buf):
        h.update(memoryview(buf)[:n])
    return h


def _digests(f: Any, reopen: Callable[[], Any]) -> tuple[str, str]:
    got = kcapi_hashlib.file_digest(f, "sha256").hexdigest()
    with reopen() as g:
        want = _hashlib_file_digest(g, "sha256").hexdigest()
    return got, want


@pytest.mark.parametrize("module", [gzip, bz2, lzma], ids=["gzip", "bz2", "lzma"])
def test_decompressing_reader(tmp_path: Path, content: bytes, module: Any) -> None:
    path = tmp_path / "data.z"
    with module.open(path, "wb") as w:
        w.write(content)
    assert path.stat().st_size >= SIZE // 2
    with module.open(path, "rb") as f:
        assert f.fileno() >= 0  # the compressed file's descriptor: not the stream read
        got, want = _digests(f, lambda: module.open(path, "rb"))
    assert want == hashlib.sha256(content).hexdigest()
    assert got == want


def test_decompressing_reader_over_an_open_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.gz"
    path.write_bytes(gzip.compress(content))
    with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as f:
        got = kcapi_hashlib.file_digest(f, "sha256").hexdigest()
    assert got == hashlib.sha256(content).hexdigest()


def test_zipfile_member(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("member", content)
        z.writestr("stored", content, compress_type=zipfile.ZIP_STORED)
    with zipfile.ZipFile(path) as z:
        for name in ("member", "stored"):
            with z.open(name) as f:
                got, want = _digests(f, lambda: z.open(name))  # noqa: B023 - called at once
            assert want == hashlib.sha256(content).hexdigest()
            assert got == want, name


def test_tarfile_member(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as t:
        info = tarfile.TarInfo("member")
        info.size = len(content)
        t.addfile(info, io.BytesIO(content))
    with tarfile.open(path) as t:
        f = t.extractfile("member")
        assert f is not None
        got = kcapi_hashlib.file_digest(f, "sha256").hexdigest()
    assert got == hashlib.sha256(content).hexdigest()


class _Inverting(io.RawIOBase):
    """A reader of a regular file that gives each byte inverted, and answers that file's fileno()."""

    def __init__(self, f: io.BufferedReader) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._f.fileno()

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, b: Any) -> int:
        data = self._f.read(len(b))
        b[: len(data)] = bytes(x ^ 0xFF for x in data)
        return len(data)


def test_custom_object_whose_fileno_is_not_its_stream(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "plain"
    path.write_bytes(content)
    with open(path, "rb") as raw:
        got = kcapi_hashlib.file_digest(_Inverting(raw), "sha256").hexdigest()
    with open(path, "rb") as raw:
        want = _hashlib_file_digest(_Inverting(raw), "sha256").hexdigest()
    assert want == hashlib.sha256(bytes(x ^ 0xFF for x in content)).hexdigest()
    assert got == want


class _Skipping(io.BufferedReader):
    """A BufferedReader subclass over a regular file whose reads drop every other chunk."""

    def readinto(self, b: Any) -> int:
        n = super().readinto(b)
        if n:
            self.seek(n, os.SEEK_CUR)
        return n


def test_buffered_reader_subclass_that_overrides_readinto(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "plain"
    path.write_bytes(content)
    with _Skipping(io.FileIO(path)) as f:
        got = kcapi_hashlib.file_digest(f, "sha256", _bufsize=4096).hexdigest()
    with _Skipping(io.FileIO(path)) as f:
        want = _hashlib_file_digest(f, "sha256", _bufsize=4096).hexdigest()
    assert got == want


@pytest.mark.parametrize("opener", ["rb", "r+b", "raw"])
@pytest.mark.parametrize("start", [0, 1, 5000, SIZE - 300000])
def test_plain_files_from_any_position(tmp_path: Path, content: bytes, opener: str, start: int) -> None:
    """The spliced kinds: the result is hashlib's from the logical position (a BufferedReader has read ahead)."""
    path = tmp_path / "plain"
    path.write_bytes(content)
    f: Any = io.FileIO(path) if opener == "raw" else open(path, opener)
    with f:
        f.read(start)
        got = kcapi_hashlib.file_digest(f, "sha256").hexdigest()
        assert f.read() == b""
    assert got == hashlib.sha256(content[start:]).hexdigest()
