"""Where fetched kernels live, and the lock that keeps parallel runs from fetching the same one twice."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir() -> Path:
    """Where fetched kernels live: ``<this>/<suite>``.

    ``$KCAPI_HASHLIB_CACHE/uml``, default ``${XDG_CACHE_HOME:-~/.cache}/kcapi_hashlib/uml``.
    """
    base = os.environ.get("KCAPI_HASHLIB_CACHE")
    if base:
        return Path(os.path.abspath(base)) / "uml"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.path.abspath(xdg)) / "kcapi_hashlib" / "uml"


@contextmanager
def fetch_lock(suite: str) -> Iterator[None]:
    """One fetch per suite at a time (parallel tox envs); stale parts go."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{suite}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Holding the lock, any ".<suite>.*" work directory is from a fetch
        # that was killed: remove it.
        for stale in root.glob(f".{suite}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def building(dest: Path) -> Iterator[Path]:
    """A work directory beside `dest` (named as fetch_lock's stale-part cleanup expects) for a fetch, under
    fetch_lock. When the block ends normally the directory becomes `dest` in one rename, readable by anyone
    (an unprivileged `vm --user` runs what is in it), so an interrupted fetch leaves nothing that looks
    complete; on any exception it goes. A concurrent fetch that put `dest` in place first wins."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=str(dest.parent)))
    try:
        yield work
        work.chmod(0o755)
        try:
            os.rename(work, dest)
        except OSError:
            if not dest.is_dir():
                raise
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
