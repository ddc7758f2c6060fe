"""The lock-free paths: small bytes updates appended to a streaming hash object's `pending` list
(HashStream.add_bytes, HashStream._absorb) and one-shots counted by one append to their algorithm's log
(accounting.Counter, fold()).

What each must keep, checked against hashlib and the accounting report:
- small updates alone reach the kernel once the stream's buffer reaches FLUSH, as any other update does: the
  bytes the kernel is given grow with the input, not with the input times the digests (and the buffer stays
  bounded);
- a lost stream raises on a small bytes update, as on any other call, in a forked child too;
- a fold interrupted at any point where a signal handler can raise counts each exchange with its bytes, or not
  at all.
"""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

import kcapi_hashlib
from kcapi_hashlib._afalg import FLUSH, accounting, core
from tests.support import checkpoints, requires

pytestmark = [requires.hash_names("sha256")]


def _sha256_bytes() -> int:
    rows = kcapi_hashlib.accounting()["kernel"]
    return sum(r["bytes"] for r in rows if r["type"] == "hash" and r["algorithm"] == "sha256")


def test_small_updates_alone_reach_the_kernel_and_digests_do_not_resend_them() -> None:
    # 3,000 updates of 1000 bytes with a digest every 10: each digest hashes what the kernel holds plus at most
    # FLUSH + 64 KiB of buffer. When small updates never left userspace, every digest sent the whole input so
    # far (300 digests x 1.5 MB on average: ~450 MB given to the kernel for 3 MB of input, and 3 MB in memory).
    chunk = bytes(range(250)) * 4
    h = kcapi_hashlib.sha256(b"x")
    h.update(b"y")  # the stream exists: every update below is a small append
    ref = hashlib.sha256(b"xy")
    before = _sha256_bytes()
    for i in range(3_000):
        h.update(chunk)
        ref.update(chunk)
        if i % 10 == 9:
            assert h.digest() == ref.digest(), f"after {i + 1} updates"
    given = _sha256_bytes() - before
    state = h._state
    assert state is not None
    kept = len(state._buf)
    assert kept < FLUSH + 64 * 1024, f"{kept} bytes kept in userspace"
    total = 3_000 * len(chunk)
    # The kernel gets the input once, plus each digest's buffered tail (below FLUSH + 64 KiB) again.
    assert given <= total + 300 * (FLUSH + 64 * 1024), f"{given} bytes given to the kernel for {total} of input"
    assert h.digest() == ref.digest()


def test_a_lost_stream_raises_on_a_small_bytes_update() -> None:
    h = kcapi_hashlib.sha256(b"a")
    h.update(b"b")
    state = h._state
    assert state is not None
    state.close()  # the kernel state dropped: the object raises from then on
    for data in (b"x", bytearray(b"x"), b"x" * 2000):
        with pytest.raises(ValueError, match="hash state was lost"):
            h.update(data)
    with pytest.raises(ValueError, match="hash state was lost"):
        h.digest()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_raises_on_a_small_update_of_a_stream_another_thread_was_using() -> None:
    # A stream with no kernel state yet (not registered with the fork hooks) whose lock another thread of the
    # parent holds at fork(): the child adopts it as lost on its first locked call. The lock-free path must not
    # run before that adoption (it returned, three times, where a bytearray update raised).
    h = kcapi_hashlib.sha256(b"a")
    h.update(b"b" * 2000)
    state = h._state
    assert state is not None
    held, release = threading.Event(), threading.Event()

    def holder() -> None:  # inside an operation on the stream when the parent forks
        state._lock.acquire()
        held.set()
        release.wait(30)
        state._lock.release()

    t = threading.Thread(target=holder)
    t.start()
    held.wait(30)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        out = []
        for data in (b"x", b"y", bytearray(b"z")):
            try:
                h.update(data)
                out.append("returned")
            except ValueError:
                out.append("ValueError")
        os.write(w, ",".join(out).encode())
        os._exit(0)
    os.close(w)
    release.set()
    t.join()
    got = os.read(r, 1000).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert got == "ValueError,ValueError,ValueError", f"the child's updates: {got}"
    assert h.digest() == hashlib.sha256(b"a" + b"b" * 2000).digest()  # the parent's object is untouched


@pytest.mark.skipif(not checkpoints.AVAILABLE, reason=checkpoints.WHY_NOT)
def test_a_fold_interrupted_at_every_point_counts_each_exchange_with_its_bytes() -> None:
    # The one-shot whose append makes the log FOLD long folds it under the lock; an exception at any point of
    # that one-shot (a signal handler's) leaves every exchange counted with its bytes, or the last not counted.
    # When fold() deleted the entries and counted them before sum() returned, an exception at sum()'s return lost
    # the bytes of the whole log (point 14 on CPython 3.14: exchanges +1, bytes -25,500).
    data = b"z" * 100
    kcapi_hashlib.sha256(data).digest()
    c = core.tfm("hash", "sha256")._acct

    def totals() -> tuple[int, int, int]:
        lock = accounting.LOCK
        lock.acquire()
        try:
            return c.totals()
        finally:
            lock.release()

    interrupted = 0
    wrong = []
    with checkpoints.injector() as run_k:
        for k in range(1, 200):
            accounting.fold(c)
            c.log.extend([len(data)] * (accounting.FOLD - 1))  # the next one-shot's append folds
            _, bytes0, exchanges0 = totals()
            h = kcapi_hashlib.sha256(data)
            run = run_k(h.digest, k)
            if run.where is None:
                break
            interrupted += 1
            _, bytes1, exchanges1 = totals()
            if bytes1 - bytes0 != (exchanges1 - exchanges0) * len(data) or exchanges1 - exchanges0 not in (0, 1):
                wrong.append(f"point {k} ({run.where}): exchanges +{exchanges1 - exchanges0}, bytes +{bytes1 - bytes0}")
    assert interrupted > 0, "no point was interrupted: the harness did not reach the package"
    assert not wrong, wrong
