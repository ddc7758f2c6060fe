"""Fork, threads and file descriptors: a child never shares an op socket with its parent, objects shared by
threads stay consistent, and no operation leaks a descriptor."""

from __future__ import annotations

import hashlib
import os
import threading

import kcapi_hashlib
from kcapi_hashlib import _afalg
from tests.support import requires

pytestmark = [
    requires.hash_names("sha256"),  # every test
    requires.hash_names("sha1", only="test_fd_count_stable_over_100k_operations"),
    requires.hash_names("sha1", only="test_garbage_collection_closes_without_resource_warnings"),
    requires.hash_names("sha512", only="test_threads_with_their_own_objects"),
]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _in_child(fn: object) -> bytes:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        try:
            out = fn()  # type: ignore[operator]
            os.write(w, out)
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return data


def test_streaming_object_forks_at_its_state() -> None:
    big = b"p" * 200_000  # streams to the kernel (past the userspace buffer)
    h = kcapi_hashlib.sha256(big)

    def child() -> bytes:
        h.update(b"child")
        return h.digest()

    got = _in_child(child)
    assert got == hashlib.sha256(big + b"child").digest()
    # The parent's stream was not touched by the child's update.
    h.update(b"parent")
    assert h.digest() == hashlib.sha256(big + b"parent").digest()


def test_child_does_not_use_parent_op_sockets() -> None:
    h = kcapi_hashlib.sha256(b"q" * 100_000)
    kcapi_hashlib.sha256(b"warm the pool").digest()
    assert any(t._idle for t in _afalg.core.live_tfms()), "the pool should hold an idle op socket"
    parent_op = h._state._op.fileno()

    def child() -> bytes:
        child_op = h._state._op.fileno()
        idle = sum(len(t._idle) for t in _afalg.core.live_tfms())
        return b"%d %d" % (child_op, idle)

    child_op, idle = map(int, _in_child(child).split())
    assert child_op != parent_op  # the child streams on its own clone
    assert idle == 0  # pooled op sockets shared with the parent were dropped in the child
    h.update(b"more")
    assert h.digest() == hashlib.sha256(b"q" * 100_000 + b"more").digest()


def test_fd_count_stable_over_100k_operations() -> None:
    def ops(n: int) -> None:
        for i in range(n):
            kcapi_hashlib.sha256(b"%d" % i).digest()
            if i % 1000 == 0:
                s = kcapi_hashlib.sha1(b"y" * 70_000)
                s.copy().hexdigest()

    ops(3000)  # binds the tfms and fills the op-socket pools to their working size
    before = _fds()
    ops(100_000)
    assert _fds() == before


def test_threads_sharing_one_object() -> None:
    h = kcapi_hashlib.sha256()
    ref = hashlib.sha256()
    chunk = b"t" * 5000  # all threads feed identical chunks, so any interleaving gives the same digest
    n_threads, per_thread = 8, 60

    def work() -> None:
        for _ in range(per_thread):
            h.update(chunk)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(n_threads * per_thread):
        ref.update(chunk)
    assert h.digest() == ref.digest()


def test_threads_with_their_own_objects() -> None:
    results: dict[int, bytes] = {}

    def work(i: int) -> None:
        data = bytes([i]) * (i * 20_000)
        results[i] = kcapi_hashlib.sha512(data).digest()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: hashlib.sha512(bytes([i]) * (i * 20_000)).digest() for i in range(1, 9)}


def test_every_af_alg_descriptor_is_close_on_exec() -> None:
    import fcntl

    h = kcapi_hashlib.sha256(b"s" * 100_000)
    h.copy().digest()
    kcapi_hashlib.blake2b(b"k", key=b"key").digest()
    sockets = [
        int(fd)
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}") and os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    ]
    assert sockets
    for fd in sockets:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC, fd


def test_garbage_collection_closes_without_resource_warnings() -> None:
    import subprocess
    import sys

    code = (
        "import gc, kcapi_hashlib as h\n"
        "a = h.sha256(b'x' * 100000); b = a.copy(); a.digest()\n"
        "k = h.blake2b(b'y', key=b'k'); k.digest()\n"
        "del a, b, k\n"
        "gc.collect()\n"
        "h.sha1(b'z').digest()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "ResourceWarning" not in proc.stderr, proc.stderr


# HashStream's methods that add bytes under the object's lock (update_view: hashlib's update() of one buffer).
UPDATES = ("update", "update_view")


def test_child_of_a_fork_during_another_threads_buffered_update_never_hangs() -> None:
    """A hash object whose data is still in its userspace buffer has no kernel state, so the fork hooks do not
    track it. Forked while another thread was inside update() on it (holding its lock), the child's copy of that
    lock could never be released: the child hung at its first call on the object (seen 1 in ~3 runs of
    tests/kernel/test_fork_free_threaded.py on UML 6.12). Now the child finds the lock held by a thread it does not
    have and marks the object lost: its call raises, it never hangs. The parent's object is unaffected."""
    import sys

    h = kcapi_hashlib.sha256(b"a")
    inside, resume = threading.Event(), threading.Event()
    hash_py = _afalg.hash.__file__

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "line" and frame.f_code.co_filename == hash_py and frame.f_code.co_name in UPDATES:
            if "buf" in frame.f_locals and not inside.is_set():  # under the lock, _busy set, the buffer read
                inside.set()
                resume.wait(30)
        return tracer

    def updater() -> None:
        sys.settrace(tracer)
        try:
            h.update(b"b")
        finally:
            sys.settrace(None)

    t = threading.Thread(target=updater)
    t.start()
    assert inside.wait(30), "the updating thread never reached update()'s critical section"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        import signal

        signal.alarm(20)  # a hang is a failure (SIGALRM), not a stuck run
        try:
            h.digest()
            os._exit(3)  # the half-done object answered
        except ValueError as e:
            os._exit(0 if "state was lost" in str(e) else 4)
        except BaseException:
            os._exit(5)
    resume.set()
    t.join(30)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"child: {'killed by signal ' + str(os.WTERMSIG(status)) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)}"
    )
    assert h.digest() == hashlib.sha256(b"ab").digest()
