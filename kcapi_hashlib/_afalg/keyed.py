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
     closed when its last user drops it (its socket closes itself). A tfm that existed before a fork() is
     never re-keyed: parent and child share the kernel socket, so a new key would change the other
     process's MACs.
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
from typing import Any, Callable, Optional, Union

from . import core
from . import keyring as _keyring
from .core import (
    _MAX_SEND,
    Buffer,
    KernelError,
    OpSocket,
    Tfm,
    nbytes,
)
from .core import recv as _recv
from .core import send as _send
from .core import sendv as _sendv
from .hash import hash_oneshot as _hash_oneshot

_blake2b: Optional[Callable[..., Any]]
try:
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - every CPython 3.9-3.13 build has _blake2
    _blake2b = None

CACHE_SIZE = 64  # keyed tfms kept; each holds one fd (plus one pooled op socket once used)
# The tag size of a fresh AEAD tfm: maxauthsize, 16 for every template used here (gcm, ccm, rfc7539).
DEFAULT_AUTHSIZE = 16

Key = Union[Buffer, _keyring.Serial]  # key bytes, or a kernel keyring key by serial (ALG_SET_KEY_BY_KEY_SERIAL)
# (kernel hash name, digest size): an hmac(...) key longer than LONG_KEY bytes is replaced by its hash before it
# reaches setsockopt (RFC 2104 section 2: the hmac template would do the same itself); alg_setkey copies the key
# into sock_kmalloc'ed memory bounded by net.core.optmem_max (20 KiB before 6.8), so a 30 KB key gets ENOMEM.
Prehash = tuple[str, int]
LONG_KEY = 4096


class _Entry:
    __slots__ = ("tfm", "generation", "authsize", "serial")

    def __init__(self, tfm: Tfm, generation: int, authsize: Optional[int] = None, serial: Optional[int] = None) -> None:
        self.tfm = tfm
        self.generation = generation
        self.authsize = authsize
        self.serial = serial  # the keyring key's serial for an ALG_SET_KEY_BY_KEY_SERIAL tfm


# No lock: every step below is one C call on the OrderedDict (get, move_to_end, popitem, setdefault), so the cache
# stays consistent with threads and with signal handlers that re-enter it, and nothing can be left locked.
# Races cost at most an extra tfm (two threads missing on one key) or a slightly late eviction.
_lru: OrderedDict[bytes, _Entry] = OrderedDict()
_secret: Optional[bytes] = None
_generation = 0  # bumped at every fork: entries from an older generation are shared with another process


def _fingerprint(alg_type: str, name: str, key: Key, authsize: Optional[int] = None) -> bytes:
    global _secret
    secret = _secret
    if secret is None:
        secret = _secret = os.urandom(32)
    assert _blake2b is not None
    if isinstance(key, _keyring.Serial):
        # A keyring key is indexed by its serial, in its own domain: "\1" where byte keys have "\0" after the
        # authsize (a decimal number or None), so no byte key can collide with a serial.
        h = _blake2b(f"{alg_type}\0{name}\0{authsize}\1{key.serial}".encode(), digest_size=32, key=secret)
        return bytes(h.digest())
    h = _blake2b(f"{alg_type}\0{name}\0{authsize}\0".encode(), digest_size=32, key=secret)
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


def _new_tfm(alg_type: str, name: str, key: Key, authsize: Optional[int] = None) -> Tfm:
    # core remembers a refusal to bind (never a transient one): later calls raise without a syscall.
    return core.keyed_tfm(alg_type, name, key, authsize)


def _rekey(entry: _Entry, alg_type: str, name: str, key: Key, authsize: Optional[int]) -> Optional[Tfm]:
    """Re-use an evicted entry's tfm socket for (alg_type, name, key); None if it cannot be (then it is gone)."""
    # (Checked before any local name refers to the tfm: _sole_owner counts references.)
    sole = _sole_owner(entry)
    if entry.generation != _generation or not sole:
        # Shared with a forked process, or live objects still use it (they keep it open; the last closes it).
        if sole:
            entry.tfm.close()
        return None
    t = entry.tfm
    if t.closed or t.alg_type != alg_type:
        return None
    # Close the pooled op sockets: the tfm takes a new key (alg_setsockopt) or algorithm (alg_bind) only
    # when no op socket refers to it any more (af_alg_release_parent).
    t.drop_idle()
    rebound = t.name != name
    if rebound:
        try:
            t.rebind(name)
        except OSError:
            t.close()
            return None  # the caller makes a fresh tfm, which reports the kernel's refusal properly
    try:
        t.setkey(key)
    except KernelError as e:
        # A failed setkey leaves the tfm without a key (crypto_shash_setkey sets CRYPTO_TFM_NEED_KEY): gone.
        t.close()
        if e.errno == errno.EBUSY:
            return None  # an op socket was still being released: make a fresh tfm
        raise
    if authsize != entry.authsize or (rebound and authsize is not None):
        # A fresh AEAD tfm starts at maxauthsize (crypto_aead_init_tfm); a re-keyed one keeps the old size. A
        # rebound one is a fresh tfm (alg_bind allocates a new one): the old entry's size says nothing about it
        # (gcm(aes) at 4 bytes rebound to ccm(aes) at 4 skipped this and left ccm at 16: recvmsg EINVAL).
        try:
            t.setauthsize(authsize if authsize is not None else DEFAULT_AUTHSIZE)
        except KernelError:
            t.close()
            raise
    return t


def _material(key: Key, prehash: Optional[Prehash]) -> Key:
    """What setsockopt gets for `key`: a long hmac key's hash (see Prehash), else the key itself. A keyring key
    is never hashed here: the kernel reads its payload (and the hmac template hashes a long one itself)."""
    if prehash is None or isinstance(key, _keyring.Serial) or nbytes(key) <= LONG_KEY:
        return key
    return _hash_oneshot(core.tfm("hash", prehash[0]), (key,), prehash[1])


def cached_tfm(
    alg_type: str, name: str, key: Key, prehash: Optional[Prehash] = None, authsize: Optional[int] = None
) -> Tfm:
    """The cached tfm for (alg_type, name) keyed with `key` (and, for AEAD, tag size `authsize`; None = the
    algorithm's maximum), made (or re-keyed) on a miss. This one cache serves every keyed transform: HMAC,
    CMAC, keyed BLAKE2b, skcipher and AEAD.

    `key` is bytes the caller has validated (a C-contiguous buffer) or a keyring.Serial; `prehash` names the hash
    an over-long HMAC key is replaced by on a miss (see Prehash); the cache is indexed by the caller's key. Raises
    AlgUnavailable / KernelError as core.keyed_tfm does.

    A keyring key (a keyring.Serial) is indexed by its serial and never hashed here (the kernel reads its payload).
    Its tfm holds a copy of the payload made at setsockopt time (alg_setkey_by_key_serial), which revoking the
    key does not touch: so every hit first asks the kernel whether the key is still usable (keyring.check, one
    keyctl), and a revoked, expired, invalidated or no longer permitted key drops its entry and raises
    KeyringError. (An in-place update of the key's payload keeps its serial and cannot be seen: clear().)
    The caller keeps the returned Tfm referenced while it uses it: a referenced tfm is never re-keyed.
    """
    if authsize == DEFAULT_AUTHSIZE:
        authsize = None
    if _blake2b is None:  # pragma: no cover - no fingerprint function: no cache, a private tfm per object
        return _new_tfm(alg_type, name, _material(key, prehash), authsize)
    fp = _fingerprint(alg_type, name, key, authsize)
    entry = _lru.get(fp)
    if entry is not None and isinstance(key, _keyring.Serial):
        try:
            _keyring.check(key.serial)
        except _keyring.KeyringError:
            drop_serial(key.serial)
            raise
    if entry is not None and not entry.tfm.closed:
        try:
            _lru.move_to_end(fp)
        except KeyError:  # evicted meanwhile by another thread: still ours to use
            pass
        return entry.tfm
    failure = core.bind_failure(alg_type, name)
    if failure is not None:
        raise failure
    victim: Optional[_Entry] = None
    if len(_lru) >= CACHE_SIZE:
        try:
            _, victim = _lru.popitem(last=False)
        except KeyError:
            pass
    generation = _generation
    serial = key.serial if isinstance(key, _keyring.Serial) else None
    material = _material(key, prehash)
    t: Optional[Tfm] = None
    try:
        if victim is not None:
            t = _rekey(victim, alg_type, name, material, authsize)
            victim = None
        if t is None:
            t = _new_tfm(alg_type, name, material, authsize)
    except core.KeyUnusable:
        # setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) refused the key (revoked, expired, invalidated, no permission):
        # no tfm of any algorithm keyed with it may be served from the cache any more.
        assert serial is not None
        drop_serial(serial)
        raise
    if generation != _generation:
        return t  # a fork happened meanwhile: use it, do not cache it
    mine = _Entry(t, generation, authsize, serial)
    other = _lru.setdefault(fp, mine)
    if other is not mine:
        if not other.tfm.closed:
            return other.tfm  # another thread made the same one meanwhile; ours is closed when dropped
        _lru[fp] = mine
    while len(_lru) > CACHE_SIZE:
        try:
            _, extra = _lru.popitem(last=False)
        except KeyError:
            break
        if _sole_owner(extra):
            extra.tfm.close()
    return t


def drop_serial(serial: int) -> int:
    """Drop every cached tfm keyed with keyring key `serial` (revoked, invalidated, updated, unlinked): closed where
    nothing else uses them. Returns how many entries went."""
    n = 0
    for fp, e in list(_lru.items()):
        if e.serial == serial and _lru.pop(fp, None) is e:
            n += 1
            if _sole_owner(e):
                e.tfm.close()
    return n


def private_tfm(alg_type: str, name: str, key: Key, prehash: Optional[Prehash] = None) -> Tfm:
    """An uncached keyed tfm (for one derivation); the caller closes it."""
    return _new_tfm(alg_type, name, _material(key, prehash))


def clear() -> int:
    """Empty the cache; close every cached tfm that no live object uses. Returns how many were cached."""
    n = 0
    while _lru:
        try:
            _, e = _lru.popitem()
        except KeyError:
            break
        n += 1
        if _sole_owner(e):
            e.tfm.close()
    return n


def cache_len() -> int:
    return len(_lru)


def _after_fork_parent() -> None:
    global _generation
    _generation += 1  # every cached tfm is now shared with the child: never re-key them


def _after_fork_child() -> None:
    global _generation, _secret
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
        # Taken while the call runs: if it raises (a signal handler's exception included), the op socket, whose
        # state is unknown, is held by nothing and closes itself; the session raises from then on.
        self._op = None
        if len(bufs) == 1 and nbytes(bufs[0]) < _MAX_SEND:
            _send(op, bufs[0], 0, self._alg)
        else:
            _sendv(op, bufs, 0, self._alg)
        out = _recv(op, self._size, self._alg)
        if len(out) != self._size:
            raise KernelError(errno.EIO, f"{self._alg.name}: short digest ({len(out)} of {self._size} bytes)")
        self._op = op
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
