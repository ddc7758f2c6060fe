"""What to do when the kernel cannot serve an algorithm: raise (strict) or use the userspace implementation
(fallback), counted and warned about once per algorithm.

The default is strict. People choose kcapi_hashlib to have the kernel do their cryptography (a FIPS-validated
kernel module, one implementation per host, hardware drivers); quietly computing somewhere else would break
that promise without anyone noticing. Fallback is one explicit call or environment variable away:
    kcapi_hashlib.set_policy("fallback")      or      KCAPI_HASHLIB_POLICY=fallback
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from typing import NoReturn, Optional

from ._afalg import AlgUnavailable
from ._afalg import accounting as _accounting

POLICIES = ("strict", "fallback")
ENV = "KCAPI_HASHLIB_POLICY"


class KernelFallbackWarning(RuntimeWarning):
    """An algorithm was computed in userspace because the kernel could not serve it (policy 'fallback')."""


class UnsupportedAlgorithm(ValueError):
    """ValueError('unsupported hash type NAME') as hashlib raises it, carrying the kernel's reason.

    `reason` is the AlgUnavailable (an OSError with the kernel's errno) or a sentence for requests the kernel
    API cannot express at all (e.g. blake2b with a salt); it is also the exception's __cause__.
    """

    def __init__(self, message: str, reason: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.errno: Optional[int] = getattr(reason, "errno", None)
        #: af_alg_restrict's part in the refusal (kcapi_hashlib._afalg.restrict.Refusal), or None
        self.restriction: Optional[object] = getattr(reason, "restriction", None)
        if hasattr(self, "add_note"):  # 3.11+: shown under the traceback
            self.add_note(f"kernel: {reason}")


def _from_env() -> str:
    """KCAPI_HASHLIB_POLICY (surrounding blanks and case ignored; unset or empty: strict). Under `python -E` / `-I`
    (sys.flags.ignore_environment) the environment is not read: strict."""
    if sys.flags.ignore_environment:
        return "strict"
    value = os.environ.get(ENV, "strict").strip().lower() or "strict"
    if value not in POLICIES:
        raise ValueError(f"{ENV}={value!r} is not a policy; use one of {', '.join(POLICIES)}")
    return value


_policy = _from_env()
# Re-entrant: a signal handler whose code falls back while its thread is inside the block below would
# deadlock on a plain Lock. Re-entered, it can at worst make a count one short (the outer read-modify-write);
# counts only, never a computation. It protects _fallbacks and _warned, and is taken by try/acquire/finally with
# the release inline, never by `with` (accounting.py says why).
_lock = threading.RLock()
_fallbacks: dict[str, int] = {}
_warned: set[str] = set()


def set_policy(policy: str) -> str:
    """Set the process-wide policy ('strict' or 'fallback'); returns the previous one."""
    global _policy
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(repr(p) for p in POLICIES)}, not {policy!r}")
    previous, _policy = _policy, policy
    return previous


def get_policy() -> str:
    return _policy


def fallback_counts() -> dict[str, int]:
    """How many objects each algorithm had served from userspace under the fallback policy (a copy)."""
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        return dict(_fallbacks)
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def reset_fallback_counts() -> None:
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        _fallbacks.clear()
        _warned.clear()
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def unavailable(kind: str, name: str, reason: object) -> None:
    """The kernel cannot serve `name`: raise under strict; count and warn once under fallback (return).

    A transient refusal (EMFILE, ENOMEM, ...: AlgUnavailable.transient) says nothing about the algorithm, so
    strict raises it as the OSError it is (errno EMFILE, like open() would), not as "unsupported hash type";
    fallback computes this one call in userspace, counted, and the next call asks the kernel again."""
    if _policy == "strict":
        _accounting.refused(kind, name, str(reason))
        if isinstance(reason, AlgUnavailable) and reason.transient:
            raise reason
        raise UnsupportedAlgorithm(f"unsupported {kind} type {name}", reason) from (
            reason if isinstance(reason, BaseException) else None
        )
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        _accounting.fallback(kind, name, str(reason))
        _fallbacks[name] = _fallbacks.get(name, 0) + 1
        first = name not in _warned
        _warned.add(name)
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned
    if first:
        warnings.warn(
            f"{name} is computed in userspace, not by the kernel: {reason}",
            KernelFallbackWarning,
            stacklevel=_caller_level(),
        )


def no_fallback(kind: str, name: str, reason: object, why: str) -> NoReturn:
    """The kernel cannot serve `name` and nothing in userspace can either (`why`: e.g. the key is in the kernel
    keyring, so this process has no bytes to compute with): raise under every policy, fallback included,
    UnsupportedAlgorithm whose message carries the reason and why there is no fallback. A transient refusal
    (EMFILE, ENOMEM, ...) is raised as the OSError it is, as under strict."""
    _accounting.refused(kind, name, str(reason))
    if isinstance(reason, AlgUnavailable) and reason.transient:
        raise reason
    raise UnsupportedAlgorithm(f"unsupported {kind} type {name}: {reason}; policy {_policy!r} {why}", reason) from (
        reason if isinstance(reason, BaseException) else None
    )


def _caller_level() -> int:
    """warnings.warn stacklevel of the first frame outside this package (the user's call)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("kcapi_hashlib"):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


__all__ = [
    "AlgUnavailable",
    "KernelFallbackWarning",
    "UnsupportedAlgorithm",
    "fallback_counts",
    "get_policy",
    "reset_fallback_counts",
    "set_policy",
]
