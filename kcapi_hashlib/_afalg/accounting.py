"""What the kernel did, and what it did not: counters per algorithm, cheap enough to stay on.

Kernel side: every Tfm holds the counter of its (type, name) from the moment it is made (`counter()`, a dict
lookup when the tfm is bound, never per operation); core.count() adds one operation and its bytes there. A
counter is a two-item list [operations, bytes], changed only with LOCK held: exact with threads, with or
without the GIL (an increment is a load and a store; two threads between them lose one). No syscall on the hot
path. LOCK is an RLock because a signal handler that hashes may interrupt its own thread inside count(): it
nests there (what it counts may then be overwritten by the interrupted increment) instead of deadlocking.
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

# Protects every counter below and core._stats (see the module docstring).
LOCK = threading.RLock()

# (alg_type, kernel name) -> [operations, bytes]
_kernel: dict[tuple[str, str], list[int]] = {}
# (kind, name) -> {reason text: count}, computed in userspace / refused under strict
_fallbacks: dict[tuple[str, str], dict[str, int]] = {}
_refusals: dict[tuple[str, str], dict[str, int]] = {}


def counter(alg_type: str, name: str) -> list[int]:
    """The [operations, bytes] counter of (alg_type, name), shared by every tfm of that algorithm."""
    key = (alg_type, name)
    c = _kernel.get(key)
    if c is None:
        with LOCK:
            c = _kernel.setdefault(key, [0, 0])
    return c


def fallback(kind: str, name: str, reason: str) -> None:
    with LOCK:
        reasons = _fallbacks.setdefault((kind, name), {})
        reasons[reason] = reasons.get(reason, 0) + 1


def refused(kind: str, name: str, reason: str) -> None:
    with LOCK:
        reasons = _refusals.setdefault((kind, name), {})
        reasons[reason] = reasons.get(reason, 0) + 1


def snapshot() -> dict[str, Any]:
    """This process's counts, as plain data (JSON-ready): see kcapi_hashlib.accounting()."""
    with LOCK:
        kernel = [
            {"type": t, "algorithm": n, "operations": c[0], "bytes": c[1]}
            for (t, n), c in sorted(_kernel.items())
            if c[0]
        ]
        userspace = [
            {"kind": k, "algorithm": n, "count": sum(r.values()), "reasons": dict(r)}
            for (k, n), r in sorted(_fallbacks.items())
        ]
        refusals = [
            {"kind": k, "algorithm": n, "count": sum(r.values()), "reasons": dict(r)}
            for (k, n), r in sorted(_refusals.items())
        ]
    return {"pid": os.getpid(), "kernel": kernel, "fallbacks": userspace, "refused": refusals}


def reset() -> None:
    """Zero every counter (the counters stay shared with the tfms that hold them)."""
    with LOCK:
        for c in _kernel.values():
            c[0] = c[1] = 0
        _fallbacks.clear()
        _refusals.clear()


def _after_fork_child() -> None:
    global LOCK
    LOCK = threading.RLock()
    reset()


os.register_at_fork(after_in_child=_after_fork_child)
