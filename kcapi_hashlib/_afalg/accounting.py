"""What the kernel did, and what it did not: counters per algorithm, cheap enough to stay on.

Kernel side: every Tfm holds the Counter of its (type, name) from the moment it is made (`counter()`, a dict
lookup when the tfm is bound, never per operation); core.count() adds one operation and its bytes there. A
counter's numbers change only with LOCK held: exact with threads, with or without the GIL (an increment is a load
and a store; two threads between them lose one). The one-shots (core.exchange, count_exchange: a send and its
recv) take no lock: each appends its size to the counter's log, one C call on a built-in list (atomic with the
GIL, and under the list's own lock in free-threaded builds), and the append that makes the log FOLD long moves it
into the numbers under LOCK (fold()). No syscall on the hot path. LOCK is an RLock because a signal handler
that hashes may interrupt its own thread inside count(): it nests there (what it counts may then be overwritten
by the interrupted increment) instead of deadlocking.
Not `with LOCK:`. CPython 3.14 compiles `with` to a CALL of __enter__ that ends with the interpreter's periodic
check, outside the block's exception handler: a signal handler that raises there leaves the lock acquired and
__exit__ never called (python/cpython#148874; fixed in 3.15, where, as in 3.11-3.13, nothing runs between
__enter__ and the block). Here that left LOCK held by the main thread after a storm of signal-handler
exceptions (tests/kernel/test_uring_interrupts.py), and the next thread to count waited forever. Every
acquisition is therefore written out, inline:

    lock = LOCK
    try:
        lock.acquire()
        ...
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned

A handler's exception at the end of acquire()'s CALL is inside the try. The only other place one can come from
is inside a blocking acquire() (a wait for another thread), which then has not acquired: this thread cannot
hold LOCK from an outer frame there (an RLock it held would have been taken again at once), so release() says
RuntimeError ("cannot release un-acquired lock"), which is ignored. One more can come right after release()
returned (its CALL's check): a handler's own RuntimeError (a refused re-entry, InterruptedCipherError,
RecursionError) must go on, not be taken for release()'s. release() is C, so its error's traceback has this
frame alone; a handler's has the handler's frame under this one (tb_next): that one is raised again. The release
stays inline in the finally block: a helper function would be a call whose entry is itself a point where a
handler runs (two tries of that left LOCK held 65 times over in one storm).
A forked child gets a new LOCK (another thread of the parent may have held the old one at fork()) and zeroes
its counters: callers read LOCK at call time, never keep the object.

Userspace side: the policy reports here every request the kernel could not serve (kcapi_hashlib._policy):
computed in userspace ("fallback", with the reason text) or refused (strict). Counters are per process: a
forked child starts from zero (its parent's counts are the parent's to report).
"""

from __future__ import annotations

import os
import threading
from typing import Any

# Protects every counter below and counting._stats (see the module docstring).
LOCK = threading.RLock()

# Exchanges a counter's log holds before the append that reaches this many folds it (see Counter).
FOLD = 256


class Counter:
    """What the kernel did for one algorithm: `ops` operations (bind, accept, send, recv, splice) of `nbytes`
    bytes of input in all, plus the one-shot exchanges (a send and its recv: two operations each), `exchanges` of
    them and their bytes folded into `nbytes`, the others still in `log`.

    ops, nbytes and exchanges: changed only under LOCK. log: the input size of each exchange not folded yet;
    appended to without a lock (one C call), emptied only by fold() and reset(), both under LOCK. Readers take a
    copy (one C call) and add it in."""

    __slots__ = ("ops", "nbytes", "exchanges", "log")

    def __init__(self) -> None:
        self.ops = 0
        self.nbytes = 0
        self.exchanges = 0
        self.log: list[int] = []

    def totals(self) -> tuple[int, int, int]:
        """(operations, bytes, exchanges) so far, the log included (each exchange is two operations); LOCK held."""
        log = self.log.copy()
        exchanges = self.exchanges + len(log)
        return self.ops + 2 * exchanges, self.nbytes + sum(log), exchanges


# (alg_type, kernel name) -> its Counter. Gains keys only under LOCK.
_kernel: dict[tuple[str, str], Counter] = {}
# (kind, name) -> {reason text: count}, computed in userspace / refused under strict
_fallbacks: dict[tuple[str, str], dict[str, int]] = {}
_refusals: dict[tuple[str, str], dict[str, int]] = {}


def counter(alg_type: str, name: str) -> Counter:
    """The Counter of (alg_type, name), shared by every tfm of that algorithm."""
    key = (alg_type, name)
    c = _kernel.get(key)
    if c is None:
        lock = LOCK
        try:
            lock.acquire()
            c = _kernel.setdefault(key, Counter())
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
    return c


def fold(c: Counter) -> None:
    """Move the exchanges in c.log into its numbers (by the append that made it FOLD long, or more): the sum of
    the first k entries, then their deletion (appends meanwhile go after them, and only fold() and reset()
    remove entries, both under LOCK), then the two increments, with no call between the deletion and the
    increments, so that no signal handler's exception can leave between them (one after sum() leaves the log
    whole). A handler that folds the same log at sum()'s return (its thread nested in LOCK) would make this fold
    delete k entries in place of those it took: the count stays exact, the bytes may not."""
    lock = LOCK
    try:
        lock.acquire()
        log = c.log
        k = len(log)
        size = sum(log[:k])
        del log[:k]
        c.exchanges += k
        c.nbytes += size
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def fallback(kind: str, name: str, reason: str) -> None:
    lock = LOCK
    try:
        lock.acquire()
        reasons = _fallbacks.setdefault((kind, name), {})
        reasons[reason] = reasons.get(reason, 0) + 1
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def refused(kind: str, name: str, reason: str) -> None:
    lock = LOCK
    try:
        lock.acquire()
        reasons = _refusals.setdefault((kind, name), {})
        reasons[reason] = reasons.get(reason, 0) + 1
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def snapshot() -> dict[str, Any]:
    """This process's counts, as plain data (JSON-ready): see kcapi_hashlib.accounting()."""
    lock = LOCK
    try:
        lock.acquire()
        kernel = [
            {"type": t, "algorithm": n, "operations": ops, "bytes": size}
            for (t, n), (ops, size, _) in sorted((key, c.totals()) for key, c in _kernel.items())
            if ops
        ]
        userspace = [
            {"kind": k, "algorithm": n, "count": sum(r.values()), "reasons": dict(r)}
            for (k, n), r in sorted(_fallbacks.items())
        ]
        refusals = [
            {"kind": k, "algorithm": n, "count": sum(r.values()), "reasons": dict(r)}
            for (k, n), r in sorted(_refusals.items())
        ]
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned
    return {"pid": os.getpid(), "kernel": kernel, "fallbacks": userspace, "refused": refusals}


def reset() -> None:
    """Zero every counter (the counters stay shared with the tfms that hold them)."""
    lock = LOCK
    try:
        lock.acquire()
        for c in _kernel.values():
            c.ops = c.nbytes = c.exchanges = 0
            del c.log[:]
        _fallbacks.clear()
        _refusals.clear()
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def _after_fork_child() -> None:
    global LOCK
    LOCK = threading.RLock()
    reset()


os.register_at_fork(after_in_child=_after_fork_child)
