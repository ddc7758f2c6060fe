"""Keyed hash transforms (crypto/algif_hash.c with a key set through crypto/af_alg.c:alg_setkey).

Two things live here:

1. The keyed-tfm cache. A keyed algorithm (hmac(sha256), cmac(aes), keyed blake2b) needs one tfm socket per
   key: the key goes on the tfm with ALG_SET_KEY before accept(), and alg_setsockopt answers EBUSY while an
   op socket of that tfm exists. Making a tfm costs socket + bind + setsockopt (+ close later), so the
   token-signing pattern (one key, many fresh hmac.new() objects) would pay 3-5 syscalls per message for the
   key alone. The cache keeps the last CACHE_SIZE keyed tfms, least recently used first out.

   - It holds no key bytes in Python. Entries are indexed by a 256-bit fingerprint
         BLAKE2b-256(key=SECRET, data=alg_type || 0 || alg_name || 0 || key)
     computed by CPython's built-in _blake2 module (in userspace: a kernel-computed fingerprint would cost a
     send + recv per lookup, which is the whole budget of a cached MAC). SECRET is 32 bytes from os.urandom,
     drawn per process (again in a forked child). Why keyed: an unkeyed hash of a key is a verifier for that
     key; anyone who could read the cache's index (a heap dump, a debugger, a log of its repr) could test
     guesses of low-entropy keys against it offline. With a secret only this process knows, the index says
     nothing about the keys without that secret too. 256 bits make a collision (two keys sharing one tfm,
     i.e. a wrong MAC) out of reach. The key itself only passes through to setsockopt.
   - Bounded: at most CACHE_SIZE tfms (each one fd, plus its pooled idle op socket).
   - An evicted tfm that nothing else uses is not closed but re-keyed for the new key: its idle op sockets
     are closed (af_alg_release_parent drops the tfm's use count to zero), then bind (only if the algorithm
     differs; alg_bind refuses with EBUSY only while op sockets exist) and setsockopt(ALG_SET_KEY). So a
     never-seen key costs close + setsockopt + accept + send + recv in steady state, and evictions do not
     leak closes into every operation. A tfm that live objects still use is dropped from the cache and
     closed by its last user (Tfm.__del__). A tfm that existed before a fork() is never re-keyed: parent and
     child share the kernel socket, so a new key would change the other process's MACs.
   - Emptied in a forked child (core.at_fork_in_child) and by clear() (public:
     kcapi_hashlib.hmac.clear_key_cache()); evicted tfms that nothing uses are closed.

2. MacSession: one op socket of a keyed tfm used for a chain of one-shot MACs (PBKDF2, HKDF): each call is
   one sendmsg + one recv. hash_recvmsg finalizes the request and hash_sendmsg restarts a finalized op socket
   (crypto_ahash_init when !ctx->more), so the same op socket serves every PRF call of a derivation.
"""

from __future__ import annotations

import errno
import os
import sys
from collections import OrderedDict
from types import TracebackType
from typing import Any, Callable, Optional

from .._guard import Guard
from . import core
from .core import (
    _MAX_SEND,
    ALG_SET_KEY,
    SOL_ALG,
    AlgUnavailable,
    Buffer,
    KernelError,
    OpSocket,
    Tfm,
    _stats,
    kernel_error,
)
from .core import recv as _recv
from .core import send as _send
from .core import sendv as _sendv

_blake2b: Optional[Callable[..., Any]]
try:
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - every CPython 3.9-3.13 build has _blake2
    _blake2b = None

CACHE_SIZE = 64  # keyed tfms kept; each holds one fd (plus one pooled op socket once used)

Prepare = Callable[[Buffer], Buffer]


class _Entry:
    __slots__ = ("tfm", "generation")

    def __init__(self, tfm: Tfm, generation: int) -> None:
        self.tfm = tfm
        self.generation = generation


_lru: OrderedDict[bytes, _Entry] = OrderedDict()
_guard = Guard()
_secret: Optional[bytes] = None
_generation = 0  # bumped at every fork: entries from an older generation are shared with another process
_unavailable: dict[tuple[str, str], AlgUnavailable] = {}  # (type, name) the kernel refused to bind


def _fingerprint(alg_type: str, name: str, key: Buffer) -> bytes:
    global _secret
    secret = _secret
    if secret is None:
        secret = _secret = os.urandom(32)
    assert _blake2b is not None
    h = _blake2b(f"{alg_type}\0{name}\0".encode(), digest_size=32, key=secret)
    h.update(key)
    out: bytes = h.digest()
    return out


def _first_refcount(entry: _Entry) -> int:
    return sys.getrefcount(entry.tfm)


def _calibrate() -> int:
    """References to entry.tfm seen by _first_refcount when only the entry holds it."""
    probe = _Entry(object.__new__(Tfm), -1)
    return _first_refcount(probe)


_SOLE = _calibrate() if hasattr(sys, "getrefcount") else -1


def _sole_owner(entry: _Entry) -> bool:
    return _SOLE > 0 and _first_refcount(entry) == _SOLE


def _bind_failure(alg_type: str, name: str) -> Optional[AlgUnavailable]:
    failure = _unavailable.get((alg_type, name))
    if failure is None:
        failure = core._probe_cache.get((alg_type, name))
    return failure


def _new_tfm(alg_type: str, name: str, key: Buffer) -> Tfm:
    failure = _bind_failure(alg_type, name)
    if failure is not None:
        raise failure
    try:
        return core.keyed_tfm(alg_type, name, key)
    except AlgUnavailable as e:
        if e.step == "bind":
            _unavailable[(alg_type, name)] = e  # never try to bind it again in this process
        raise


def _rekey(entry: _Entry, alg_type: str, name: str, key: Buffer) -> Optional[Tfm]:
    """Re-use an evicted entry's tfm socket for (alg_type, name, key); None if it cannot be (then it is gone)."""
    # (Checked before any local name refers to the tfm: _sole_owner counts references.)
    sole = _sole_owner(entry)
    if entry.generation != _generation or not sole:
        # Shared with a forked process, or live objects still use it (they keep it open; the last closes it).
        if sole:
            entry.tfm.close()
        return None
    t = entry.tfm
    sock = t._sock
    if sock is None:
        return None
    # Close the pooled op sockets: the tfm takes a new key (alg_setsockopt) or algorithm (alg_bind) only
    # when no op socket refers to it any more (af_alg_release_parent).
    t.drop_idle()
    if (t.alg_type, t.name) != (alg_type, name):
        try:
            sock.bind((alg_type, name))
        except OSError:
            t.close()
            return None  # the caller makes a fresh tfm, which reports the kernel's refusal properly
        _stats["bind"] += 1
        t.alg_type = alg_type
        t.name = name
    try:
        sock.setsockopt(SOL_ALG, ALG_SET_KEY, bytes(key))
    except OSError as e:
        # A failed setkey leaves the tfm without a key (crypto_shash_setkey sets CRYPTO_TFM_NEED_KEY): gone.
        t.close()
        if e.errno == errno.EBUSY:
            return None  # an op socket was still being released: make a fresh tfm
        raise kernel_error(e, "setsockopt(ALG_SET_KEY)", alg_type, name) from None
    return t


def cached_tfm(alg_type: str, name: str, key: Buffer, prepare: Optional[Prepare] = None) -> Tfm:
    """The cached tfm for (alg_type, name) keyed with `key`, made (or re-keyed) on a miss.

    `prepare(key)` gives the bytes handed to setsockopt on a miss (e.g. an over-long HMAC key hashed first);
    the cache is indexed by the caller's key. Raises AlgUnavailable / KernelError as core.keyed_tfm does.
    """
    if _blake2b is None:  # pragma: no cover - no fingerprint function: no cache, a private tfm per object
        return _new_tfm(alg_type, name, prepare(key) if prepare is not None else key)
    fp = _fingerprint(alg_type, name, key)
    victim: Optional[_Entry] = None
    with _guard:
        entry = _lru.get(fp)
        if entry is not None:
            if entry.tfm._sock is not None:
                _lru.move_to_end(fp)
                return entry.tfm
            del _lru[fp]  # closed under us (core.close_all): make a new one
        if len(_lru) >= CACHE_SIZE:
            _, victim = _lru.popitem(last=False)
        generation = _generation
    material = prepare(key) if prepare is not None else key
    t: Optional[Tfm] = None
    if victim is not None:
        failure = _bind_failure(alg_type, name)
        if failure is not None:
            raise failure
        t = _rekey(victim, alg_type, name, material)
        victim = None
    if t is None:
        t = _new_tfm(alg_type, name, material)
    with _guard:
        if generation != _generation:
            return t  # a fork happened meanwhile: use it, do not cache it
        other = _lru.get(fp)
        if other is not None and other.tfm._sock is not None:
            return other.tfm  # another thread made the same one meanwhile; ours is closed when dropped
        _lru[fp] = _Entry(t, generation)
        extra = [_lru.popitem(last=False)[1] for _ in range(len(_lru) - CACHE_SIZE)]
    for e in extra:
        if _sole_owner(e):
            e.tfm.close()
    return t


def private_tfm(alg_type: str, name: str, key: Buffer) -> Tfm:
    """An uncached keyed tfm (for one derivation); the caller closes it."""
    return _new_tfm(alg_type, name, key)


def clear() -> int:
    """Empty the cache; close every cached tfm that no live object uses. Returns how many were cached."""
    with _guard:
        entries = list(_lru.values())
        _lru.clear()
    n = len(entries)
    while entries:
        e = entries.pop()
        if _sole_owner(e):
            e.tfm.close()
    return n


def cache_len() -> int:
    return len(_lru)


def _after_fork_parent() -> None:
    global _generation
    _generation += 1  # every cached tfm is now shared with the child: never re-key them


def _after_fork_child() -> None:
    global _generation, _secret, _guard
    _guard = Guard()  # a thread of the parent may have held it at fork(): it does not exist here
    _generation += 1
    _secret = None  # a new per-process secret, drawn on first use
    clear()


core.on_fork(lambda: None, _after_fork_parent, lambda: None)
core.at_fork_in_child(_after_fork_child)


# --- one op socket for a chain of MACs ------------------------------------------------------------------


class MacSession:
    """One op socket of a keyed hash tfm for many one-shot MACs: each call is one sendmsg + one recv."""

    __slots__ = ("_alg", "_op", "_size")

    def __init__(self, alg: Tfm, size: int) -> None:
        self._alg = alg
        self._size = size
        self._op: Optional[OpSocket] = alg.op()

    def __call__(self, *bufs: Buffer) -> bytes:
        op = self._op
        if op is None:
            raise ValueError(f"{self._alg.name} MAC session is closed")
        try:
            if len(bufs) == 1 and len(bufs[0]) < _MAX_SEND:
                _send(op, bufs[0], 0, self._alg)
            else:
                _sendv(op, bufs, 0, self._alg)
            out = _recv(op, self._size, self._alg)
        except BaseException:
            self._op = None
            op.close()  # the op socket's state is unknown: never reuse it
            raise
        if len(out) != self._size:
            self._op = None
            op.close()
            raise KernelError(errno.EIO, f"{self._alg.name}: short digest ({len(out)} of {self._size} bytes)")
        return out

    def close(self) -> None:
        """Give the (finalized) op socket back to the tfm's pool."""
        op, self._op = self._op, None
        if op is not None:
            self._alg.release(op)

    def __enter__(self) -> MacSession:
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()
