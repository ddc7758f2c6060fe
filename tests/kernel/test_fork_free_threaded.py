"""fork() while other threads are inside kcapi_hashlib: the child never sees a half-done operation.

Parent threads hammer a shared hash object (identical chunks, so its state after any number of whole updates is
known) and the keyed-transform cache (more keys than it holds: misses evict and re-key); the main thread forks
meanwhile. Each child checks, against hashlib/hmac: the shared object's state is that of some whole number of
updates, fresh and cached-key MACs are right, and new objects work; then exits. A child that hangs (a lock held
by a thread that does not exist in it) is killed at a deadline and fails the test. Meant for free-threaded
CPython, where the parent's threads really run while fork() happens; on a GIL build they are stopped at a
bytecode boundary, which it checks too.
"""

from __future__ import annotations

import faulthandler
import hashlib
import hmac as std_hmac
import os
import signal
import sys
import sysconfig
import threading
import time
import warnings
from typing import Any

import pytest

import kcapi_hashlib
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib._afalg import keyed
from tests.support import requires

pytestmark = [requires.hash_names("sha256", "hmac:sha256", "hmac:sha1")]

FORKS = int(os.environ.get("KCAPI_HASHLIB_FT_FORKS", "40"))
CHILD_DEADLINE = 15.0
PER_OBJECT = 200  # a child takes well under a second in the VM; past this it is taken for hung
BUDGET = float(os.environ.get("KCAPI_HASHLIB_FT_DEADLINE", "120"))  # no fork starts after this many seconds
# CPython 3.13.x built with --disable-gil: a forked child can hang in a lookup of a dict that other threads of the
# parent were reading at fork() (measured with 3.13.15: the child spins in dict.get, no kcapi_hashlib involved).
CPYTHON_313T_FORK_HANG = sys.version_info[:2] == (3, 13) and bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
CHUNK = b"c" * 3000  # past nothing: a whole update is one kernel send (or buffered), never split by size


def _child(holder: list[Any], valid: frozenset[bytes], keys: list[bytes]) -> int:
    """Runs in the forked child; returns its exit status (0: everything right; 1x: which check failed)."""
    lost = False
    try:
        shared = holder[0]
        try:
            if shared.copy().digest() not in valid:
                return 10  # not the state of any whole number of updates
        except ValueError as e:
            # Another thread was inside a call on it at fork() (a lock no thread here can release): the child's
            # copy refuses, saying so (kcapi_hashlib/_afalg/hash.py HashStream._adopt_in_child), never answers.
            if "state was lost" not in str(e):
                raise
            lost = True
        for i, key in enumerate(keys):  # cached keys (the parent's threads were using them) and fresh ones
            msg = b"child %d" % i
            if khmac.digest(key, msg, "sha256") != std_hmac.digest(key, msg, "sha256"):
                return 11
            if khmac.new(key + b"-fresh", msg, "sha1").digest() != std_hmac.digest(key + b"-fresh", msg, "sha1"):
                return 12
        if kcapi_hashlib.sha256(b"child").digest() != hashlib.sha256(b"child").digest():
            return 13
        if lost:
            return 15
        shared.update(CHUNK)  # the child's copy of the shared object still works
        return 0
    except BaseException:  # the status says it
        return 14


def _wait(pid: int) -> int:
    stop = time.monotonic() + CHILD_DEADLINE
    while time.monotonic() < stop:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -999  # hung


def test_fork_with_threads_hammering_shared_objects_and_the_key_cache() -> None:
    # The shared object: two threads feed it identical chunks, so its state after k whole updates is
    # sha256(CHUNK * k); after PER_OBJECT updates a new one takes its place (holder: [object, updates begun on it],
    # guarded by updates_lock), which keeps the set of valid states small.
    valid = frozenset(hashlib.sha256(CHUNK * k).digest() for k in range(PER_OBJECT + 1))
    holder: list[Any] = [kcapi_hashlib.sha256(), 0]
    keys = [b"key-%d" % i for i in range(keyed.CACHE_SIZE * 2)]
    stop = threading.Event()
    updates_lock = threading.Lock()
    wrong: list[str] = []

    def hammer_object() -> None:
        while not stop.is_set():
            with updates_lock:
                if holder[1] == PER_OBJECT:
                    holder[:] = [kcapi_hashlib.sha256(), 0]
                obj = holder[0]
                holder[1] += 1
            obj.update(CHUNK)

    def hammer_cache(t: int) -> None:
        i = 0
        while not stop.is_set():
            key, msg = keys[(i * 5 + t) % len(keys)], b"%d" % i
            alg = ("sha256", "sha1")[i % 2]
            if khmac.digest(key, msg, alg) != std_hmac.digest(key, msg, alg):
                wrong.append(f"parent thread {t} op {i}")
            i += 1

    threads = [threading.Thread(target=hammer_object) for _ in range(2)]
    threads += [threading.Thread(target=hammer_cache, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    statuses = []
    try:
        time.sleep(0.2)
        ends = time.monotonic() + BUDGET
        for _ in range(FORKS):
            if time.monotonic() > ends or -999 in statuses:  # one hung child is the verdict
                break
            with warnings.catch_warnings():
                # 3.12+: "This process is multi-threaded, use of fork() may lead to deadlocks in the child."
                # That is the situation under test.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                # a hung child prints where it is stuck (every thread it has: only this one) before the kill
                faulthandler.dump_traceback_later(CHILD_DEADLINE - 5, exit=True)
                os._exit(_child(holder, valid, keys[:8]))
            statuses.append(_wait(pid))
            time.sleep(0.005)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not wrong, wrong[:3]
    # the parent's object is intact: every thread is done with it
    assert holder[0].digest() == hashlib.sha256(CHUNK * holder[1]).digest()
    hung = statuses.count(1) + statuses.count(-999)
    # 15: the shared object refused in the child (lost: another thread was inside a call on it at fork()), all
    # else right: a correct outcome
    bad = {s: statuses.count(s) for s in set(statuses) if s not in (0, 1, 15, -999)}
    legend = "status: count; 10 half-done object state, 11-12 wrong MAC, 13 hash, 14 exception"
    assert not bad, f"children computed wrong ({legend}): {bad} of {len(statuses)}"
    if hung and CPYTHON_313T_FORK_HANG:
        pytest.xfail(
            f"{hung} of {len(statuses)} children hung (stacks above), the others were right: CPython 3.13 "
            "free-threaded's own fork bug (a child forked while other threads read a shared dict can hang in "
            "dict.get; reproduced without kcapi_hashlib: 2 of 40 forks of a 3-thread dict.get/setdefault loop)"
        )
    assert not hung, f"{hung} of {len(statuses)} children hung (1: faulthandler dumped the stack above; -999: killed)"
