"""Syscall budgets of hashing: every syscall of the process, steady state, counted by strace -f -c
inside the kernel VM. Counts are deterministic, so they are asserted (timings never are)."""

from __future__ import annotations

import os

import pytest

from tests.support import requires
from tests.support.syscalls import steady_state

pytestmark = [
    requires.hash_names("sha256", only="test_small_*"),
    requires.hash_names("sha256", only="test_repeated_digest_is_cached"),
    requires.hash_names("sha256", only="test_thousand_small_updates_then_digest_at_most_five"),
    requires.hashes("name", only="test_other_algorithms_small_digest"),
    requires.hash_names("sha256", only="test_file_digest_of_64_mib_splices"),
]


def test_small_digest_is_two_syscalls() -> None:
    count = steady_state("import kcapi_hashlib as h", "h.sha256(b'abc').digest()")
    assert count.per_op <= 2, count
    # write(2) on the op socket is its sendmsg without flags (net/socket.c: sock_write_iter); see OpSocket.
    assert sum(count.by_syscall.get(name, 0) for name in ("sendto", "sendmsg", "write", "writev")) == 1, count


def test_small_hexdigest_is_two_syscalls() -> None:
    count = steady_state("import kcapi_hashlib as h", "h.sha256(b'abc').hexdigest()")
    assert count.per_op <= 2, count


def test_repeated_digest_is_cached() -> None:
    count = steady_state("import kcapi_hashlib as h", "x = h.sha256(b'abc'); x.digest(); x.hexdigest(); x.digest()")
    assert count.per_op <= 2, count


def test_thousand_small_updates_then_digest_at_most_five() -> None:
    count = steady_state(
        "import kcapi_hashlib as h\nblock = b'a' * 64",
        "x = h.sha256()\nfor _ in range(1000): x.update(block)\nx.digest()",
        n=50,
    )
    assert count.per_op <= 5, count


@pytest.mark.parametrize("name", ["sha1", "sha512", "sha3_256", "blake2b", "md5"])
def test_other_algorithms_small_digest(name: str) -> None:
    count = steady_state("import kcapi_hashlib as h", f"h.{name}(b'abc').digest()")
    # <= 2 per operation, give or take one allocator call in the whole run (7.3 amd64 as uid 4242: glibc
    # trimmed its heap once in 200 sha1 digests, munmap 0.005 per operation): not a per-operation cost
    assert count.per_op <= 2 + 1.5 / 200, count


def test_file_digest_of_64_mib_splices(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "big")
    with open(path, "wb") as f:
        f.write(os.urandom(64 << 20))
    count = steady_state(
        f"import kcapi_hashlib as h\npath = {path!r}",
        "with open(path, 'rb') as f: h.file_digest(f, 'sha256').digest()",
        n=3,
    )
    splices = count.by_syscall.get("splice", 0)
    # 64 MiB through a 1 MiB pipe: 64 splices in and 64 out. No read() carries the data through Python.
    assert splices >= 128, count
    assert count.by_syscall.get("read", 0) <= 4, count
    # Everything else is a constant per file (open, fstat, pipe2, fcntl(F_SETPIPE_SZ), accept, recv, closes),
    # not per chunk: 21 on 6.1 with Python 3.11.
    assert count.per_op - splices <= 32, count
