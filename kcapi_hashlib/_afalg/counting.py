"""The process's AF_ALG operation counters (what stats() and kernel_operations() report, and what tests read to
prove they reached the kernel) and the one place that counts them with each algorithm's own counter: count() and
count_exchange(). core re-exports every name here (core.count, core.stats, ...) and its exchange() counts inline
into the same counters. Every counter is protected by accounting.LOCK, taken by try/acquire/finally, never `with`
(see accounting.py: CPython 3.14 can skip a `with` block's __exit__ when a signal handler raises).
"""

from __future__ import annotations

from typing import Protocol

from . import accounting

_FOLD = accounting.FOLD


class Counted(Protocol):
    """What count() needs of a tfm (core.Tfm): its algorithm's accounting.Counter."""

    _acct: accounting.Counter


# Every kernel operation made (bind, accept, send, recv, splice) but the one-shot exchanges; tests read it to
# prove they reached AF_ALG. Protected by accounting.LOCK, as every per-algorithm counter is (see count()).
# An exchange (a send and its recv, counted together by count_exchange and core.exchange) is counted in its
# algorithm's Counter only (one append to its log): stats() adds their sum to both "send" and "recv".
_stats = {"bind": 0, "accept": 0, "send": 0, "recv": 0, "splice": 0}


def _pairs() -> int:
    """The exchanges of every algorithm (accounting.LOCK held: _kernel gains keys only under it)."""
    return sum(c.totals()[2] for c in accounting._kernel.values())


def stats() -> dict[str, int]:
    """How many AF_ALG operations this process made, by kind (a copy)."""
    lock = accounting.LOCK
    try:  # not `with`: see accounting.py
        lock.acquire()
        out = dict(_stats)
        pairs = _pairs()
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned
    out["send"] += pairs
    out["recv"] += pairs
    return out


def kernel_operations() -> int:
    lock = accounting.LOCK
    try:  # not `with`: see accounting.py
        lock.acquire()
        return sum(_stats.values()) + 2 * _pairs()
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def count(alg: Counted, kind: str, nbytes: int = 0, ops: int = 1) -> None:
    """`ops` AF_ALG operations of `kind` on `alg` (one, but for io_uring's batches), of nbytes of input in all: the
    process-wide stats(), and accounting per algorithm (the tfm's own counter: no lookup, no syscall; see
    accounting.py). The one place that counts: each increment is a read-modify-write, exact only under
    accounting.LOCK (without the GIL, threads counting at once lost 13-60% of their counts)."""
    c = alg._acct
    lock = accounting.LOCK
    try:  # not `with`: see accounting.py, "Not `with LOCK:`"
        lock.acquire()
        _stats[kind] += ops
        c.ops += ops
        c.nbytes += nbytes
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def count_exchange(alg: Counted, nbytes: int) -> None:
    """count(alg, "send", nbytes) and count(alg, "recv") as one exchange: one append to the counter's log, no lock
    (see accounting.Counter)."""
    c = alg._acct
    log = c.log
    log.append(nbytes)
    if len(log) >= _FOLD:
        accounting.fold(c)
