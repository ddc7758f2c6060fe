"""Descriptor ownership in _afalg (core.py): every AF_ALG descriptor has one owner from the syscall that made it to
its one close, also when exceptions from signal handlers land at any bytecode boundary.

These drive the socket layer itself (accept, lazy socket objects, pooling, close) under a storm of SIGALRM
exceptions in a child interpreter, and count descriptors in /proc/self/fd. The library-level storms (hash objects,
HMAC, AEAD) are in test_signal_storm.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import core
from tests.support import requires

pytestmark = [
    requires.hash_names("sha256"),  # every test's tfm
    requires.hash_names("sha1", only="test_storm_over_accept_wrap_pool_close_leaks_nothing"),  # the child's
]

_CHILD = r"""
import gc, os, random, signal, sys, time
from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import core

class Storm(Exception):
    pass

def fds():
    return len(os.listdir("/proc/self/fd"))

armed = False

def handler(signum, frame):
    global armed
    signal.setitimer(signal.ITIMER_REAL, random.uniform(20e-6, 1e-3))
    if armed:  # only inside the measured block; the harness's own lines run unarmed
        armed = False
        raise Storm

t = core.tfm("hash", "sha256")
t.release(t.accept())
before = fds()
signal.signal(signal.SIGALRM, handler)
deadline = time.monotonic() + float(sys.argv[1])
storms = rounds = 0
signal.setitimer(signal.ITIMER_REAL, 100e-6)
while time.monotonic() < deadline:
    try:
        armed = True
        op = t.accept()            # accept4 into its box
        getattr(op, "sock", None)  # (formerly: a socket.socket wrapper of the bare number, made lazily)
        clone = op.accept()        # an op socket accepted from an op socket
        clone = clone[0] if isinstance(clone, tuple) else clone  # (the earlier API returned a pair)
        clone.close()
        t.release(op)              # pooled, or closed when the pool is full
        t.op().close()
        tfm = core.Tfm("hash", "sha1")  # socket() + bind into a new tfm's box
        tfm.close()
        armed = False
        rounds += 1
    except Storm:
        storms += 1
signal.setitimer(signal.ITIMER_REAL, 0)
signal.signal(signal.SIGALRM, signal.SIG_IGN)
del op, clone, tfm
gc.collect()
t.drop_idle()
after = fds()
# Every descriptor still open is a live AF_ALG socket this process owns: nothing was closed twice.
print(storms, rounds, before, after, flush=True)
"""


def test_storm_over_accept_wrap_pool_close_leaks_nothing() -> None:
    seconds = os.environ.get("KCAPI_STRESS_SECONDS", "4")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, seconds], capture_output=True, text=True, timeout=60 + 10 * float(seconds)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    storms, rounds, before, after = map(int, proc.stdout.split())
    assert storms > 100, f"the storm interrupted only {storms} rounds: not a test"
    assert rounds > 100, f"only {rounds} rounds completed"
    # `before` has the tfm plus one pooled op socket; drop_idle closed the pool, so `after` may be lower.
    assert after <= before, f"{after - before} descriptors leaked over {storms} interrupted rounds"


def _fd_targets() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return out


def test_close_is_idempotent_and_never_closes_a_reused_number() -> None:
    t = core.tfm("hash", "sha256")
    op = t.accept()
    fd = op.fileno()
    assert _fd_targets()[fd].startswith("socket:")
    op.close()
    assert fd not in _fd_targets()
    r, w = os.pipe()  # takes the lowest free numbers: often the one op just gave back
    try:
        op.close()  # a second close is a no-op, never a close of whatever now has that number
        t.release(op)  # a closed op socket is never pooled
        assert op not in t._idle
        del op
        assert r in _fd_targets() and w in _fd_targets()
        os.fstat(r)
        os.fstat(w)
    finally:
        os.close(r)
        os.close(w)


def test_a_dropped_op_socket_closes_its_descriptor() -> None:
    t = core.tfm("hash", "sha256")
    op = t.accept()
    fd = op.fileno()
    del op  # no close(): the C socket object's finalizer closes it (what every exception path relies on)
    assert fd not in _fd_targets()


def test_concurrent_closes_close_once() -> None:
    t = core.tfm("hash", "sha256")
    for _ in range(200):
        op = t.accept()
        fd = op.fileno()
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def close(o: core.OpSocket = op, b: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            b.wait(5)
            try:
                o.close()
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=close) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(10)
        assert not errors, errors
        assert op.closed and fd not in _fd_targets()


def test_sockets_are_the_c_type_not_the_patchable_class() -> None:
    import socket

    t = core.tfm("hash", "sha256")
    op = t.accept()
    try:
        assert isinstance(op, core._socket.socket) and not isinstance(op, socket.socket)
        assert isinstance(t._sock, core._socket.socket) and not isinstance(t._sock, socket.socket)
    finally:
        op.close()
    assert _afalg.kernel_operations() > 0
