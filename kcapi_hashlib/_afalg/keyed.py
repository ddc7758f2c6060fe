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
     key: anyone who could read the cache's index alone (a log of its repr, a leaked fingerprint) could test
     guesses of low-entropy keys against it offline. SECRET lives in the same process memory, though: a full
     memory dump holds both, and with them a weak key can still be guessed offline (a strong key cannot). The
     key bytes themselves only pass through to setsockopt. 256 bits make a collision (two keys sharing one tfm,
     i.e. a wrong MAC) out of reach.
   - A tfm's algorithm and key are set once, in core.Tfm's constructor, before any other thread can see it, and
     never change: nothing here re-keys, rebinds or closes a tfm that a caller may hold. That is what makes a
     tfm handed out by cached_tfm safe to use for as long as the caller keeps it (an HMAC object for its
     lifetime, a one-shot for one call), whatever other threads do to the cache meanwhile: the caller's
     reference is its lease. An evicted or cleared entry is only dropped from the cache; its tfm closes when
     its last user lets go of it (core.Tfm.__del__), at once if the cache was the last. (Earlier versions
     re-keyed unused evicted tfms in place to save a socket + bind per miss; telling "unused" from "handed
     out a moment ago" is what went wrong under threads, so the saving is gone: a never-seen key with a full
     cache costs socket + bind + setsockopt + accept + send + recv, plus the evicted tfm's closes.)
   - Bounded: at most CACHE_SIZE entries (each one fd, plus its pooled idle op socket).
   - Emptied in a forked child (a new SECRET there) and by clear() (public:
     kcapi_hashlib.hmac.clear_key_cache()). Sharing a tfm with a forked child is safe: each process accepts
     its own op sockets from it and its key never changes.

2. MacSession: one op socket of a keyed tfm used for a chain of one-shot MACs (PBKDF2, HKDF): each call is
   one sendmsg + one recv. hash_recvmsg finalizes the request and hash_sendmsg restarts a finalized op socket
   (crypto_ahash_init when !ctx->more), so the same op socket serves every PRF call of a derivation.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from types import TracebackType
from typing import Any, Callable, Optional, Union

from . import core
from . import keyring as _keyring
from .core import (
    _MAX_SEND,
    Buffer,
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
except ImportError:  # pragma: no cover - every CPython build has _blake2
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
    __slots__ = ("tfm", "serial")

    def __init__(self, tfm: Tfm, serial: Optional[int] = None) -> None:
        self.tfm = tfm
        self.serial = serial  # the keyring key's serial for an ALG_SET_KEY_BY_KEY_SERIAL tfm


# The cache: fingerprint -> entry, least recently used first. Protected by _lock: every read and write of _lru
# happens with it held, and nothing inside those critical sections makes a syscall or drops the last reference to
# an open Tfm (whose finalizer closes descriptors): entries leaving the cache are handed out of the section and
# dropped after it (_store overwrites an entry in place only when its tfm is already closed). An RLock, not a
# Lock: a signal handler runs on the thread it interrupted, possibly inside a critical section here, and may
# compute a MAC; it then nests (each section leaves _lru consistent after every step: at worst the outer section
# finds an entry gone or the cache one over its bound, both handled) instead of deadlocking. It is never held
# across fork(): a forked child gets a new lock and a new, empty cache (_after_fork_child), whatever another
# thread of the parent was doing with the old ones. _secret: drawn once per process under _lock; a forked child
# draws its own. Every section is written out as try/acquire/finally, not `with _lock:` (CPython 3.14 can skip a
# `with` block's __exit__ when a signal handler raises right after __enter__: see accounting.py).
_lock = threading.RLock()
_lru: OrderedDict[bytes, _Entry] = OrderedDict()
_secret: Optional[bytes] = None


def _fingerprint(alg_type: str, name: str, key: Key, authsize: Optional[int] = None) -> bytes:
    global _secret
    secret = _secret
    if secret is None:
        lock = _lock
        try:  # not `with`: see accounting.py
            lock.acquire()
            secret = _secret
            if secret is None:
                secret = _secret = os.urandom(32)
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
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


def _new_tfm(alg_type: str, name: str, key: Key, authsize: Optional[int] = None) -> Tfm:
    # core remembers a refusal to bind (never a transient one): later calls raise without a syscall.
    return core.keyed_tfm(alg_type, name, key, authsize)


def _material(key: Key, prehash: Optional[Prehash]) -> Key:
    """What setsockopt gets for `key`: a long hmac key's hash (see Prehash), else the key itself. A keyring key
    is never hashed here: the kernel reads its payload (and the hmac template hashes a long one itself)."""
    if prehash is None or isinstance(key, _keyring.Serial) or nbytes(key) <= LONG_KEY:
        return key
    return _hash_oneshot(core.tfm("hash", prehash[0]), (key,), prehash[1])


def _lookup(fp: bytes) -> Optional[Tfm]:
    """The cached, open tfm under fingerprint fp (now the most recently used), or None."""
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        entry = _lru.get(fp)
        if entry is None:
            return None
        t = entry.tfm
        if not t._open:  # closed by core.close_all(): a miss
            return None
        try:
            _lru.move_to_end(fp)
        except KeyError:  # a signal handler nested here dropped it: still ours to use (its key never changes)
            pass
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned
    return t


def _store(fp: bytes, entry: _Entry) -> tuple[Tfm, list[_Entry]]:
    """Cache entry under fp unless an open tfm is already there (another thread made the same one meanwhile: that
    one is served, ours is dropped). Returns the tfm to use and the entries pushed out, which the caller drops
    outside the lock."""
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        other = _lru.get(fp)
        if other is not None and not other.tfm.closed:
            return other.tfm, [entry]
        _lru[fp] = entry
        out = []
        while len(_lru) > CACHE_SIZE:
            try:
                out.append(_lru.popitem(last=False)[1])
            except KeyError:  # emptied by a signal handler nested here
                break
        return entry.tfm, out
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def cached_tfm(
    alg_type: str, name: str, key: Key, prehash: Optional[Prehash] = None, authsize: Optional[int] = None
) -> Tfm:
    """The cached tfm for (alg_type, name) keyed with `key` (and, for AEAD, tag size `authsize`; None = the
    algorithm's maximum), made on a miss. This one cache serves every keyed transform: HMAC, CMAC, keyed BLAKE2b,
    skcipher and AEAD.

    `key` is bytes the caller has validated (a C-contiguous buffer) or a keyring.Serial; `prehash` names the hash
    an over-long HMAC key is replaced by on a miss (see Prehash); the cache is indexed by the caller's key. Raises
    AlgUnavailable / KernelError as core.keyed_tfm does.

    A keyring key (a keyring.Serial) is indexed by its serial and never hashed here (the kernel reads its payload).
    Its tfm holds a copy of the payload made at setsockopt time (alg_setkey_by_key_serial), which revoking the
    key does not touch: so every hit first asks the kernel whether the key is still usable (keyring.check, one
    keyctl), and a revoked, expired, invalidated or no longer permitted key drops its entry and raises
    KeyringError. (An in-place update of the key's payload keeps its serial and cannot be seen: clear().)

    The returned tfm is the caller's to use for as long as it keeps a reference: its algorithm and key were set
    before anyone else could see it and are never changed (see the module docstring).
    """
    if authsize == DEFAULT_AUTHSIZE:
        authsize = None
    secret = _secret
    if type(key) is bytes and secret is not None and _blake2b is not None:
        # The common case (a bytes key, the secret drawn): _fingerprint's and _lookup's steps for it, inline.
        h = _blake2b(f"{alg_type}\0{name}\0{authsize}\0".encode(), digest_size=32, key=secret)
        h.update(key)
        fp: bytes = h.digest()
        lock = _lock
        try:  # not `with`: see accounting.py
            lock.acquire()
            entry = _lru.get(fp)
            if entry is not None:
                t = entry.tfm
                if t._open:  # else closed by core.close_all(): a miss
                    try:
                        _lru.move_to_end(fp)
                    except KeyError:  # a signal handler nested here dropped it: still ours to use
                        pass
                    return t
        finally:
            try:
                lock.release()
            except RuntimeError as e:  # un-acquired: see accounting.py
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    raise  # a signal handler's, raised after release() returned
    else:
        if _blake2b is None:  # pragma: no cover - no fingerprint function: no cache, a private tfm per object
            return _new_tfm(alg_type, name, _material(key, prehash), authsize)
        fp = _fingerprint(alg_type, name, key, authsize)
        hit = _lookup(fp)
        if hit is not None:
            if isinstance(key, _keyring.Serial):
                try:
                    _keyring.check(key.serial)
                except _keyring.KeyringError:
                    drop_serial(key.serial)
                    raise
            return hit
    failure = core.bind_failure(alg_type, name)
    if failure is not None:
        raise failure
    serial = key.serial if isinstance(key, _keyring.Serial) else None
    try:
        t = _new_tfm(alg_type, name, _material(key, prehash), authsize)
    except core.KeyUnusable:
        # setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) refused the key (revoked, expired, invalidated, no permission):
        # no tfm of any algorithm keyed with it may be served from the cache any more.
        assert serial is not None
        drop_serial(serial)
        raise
    t, dropped = _store(fp, _Entry(t, serial))
    del dropped  # closed here, outside the lock, where nothing else holds them (Tfm.__del__)
    return t


def drop_serial(serial: int) -> int:
    """Drop every cached tfm keyed with keyring key `serial` (revoked, invalidated, updated, unlinked); each
    closes when its last user lets go of it. Returns how many entries went."""
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        gone = [fp for fp, e in _lru.items() if e.serial == serial]
        dropped = [_lru.pop(fp) for fp in gone]
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned
    return len(dropped)


def private_tfm(alg_type: str, name: str, key: Key, prehash: Optional[Prehash] = None) -> Tfm:
    """An uncached keyed tfm (for one derivation); the caller closes it."""
    return _new_tfm(alg_type, name, _material(key, prehash))


def clear() -> int:
    """Empty the cache. Each tfm closes when nothing uses it any more: at once for those only the cache held,
    when their last object goes for the others (closing a tfm under an object would end its operations).
    Returns how many were cached."""
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        dropped = list(_lru.values())
        _lru.clear()
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned
    return len(dropped)


def cache_len() -> int:
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        return len(_lru)
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def _after_fork_child() -> None:
    global _lock, _lru, _secret
    # The child's only thread is this one: new objects, not the old ones' state (another thread of the parent may
    # have held the old lock, or been inside the old dict, at fork()). Every cached tfm is shared with the parent
    # now. Sharing is safe (a tfm's key never changes and each process accepts its own op sockets) but the child
    # starts with an empty cache under its own secret, so a dump of the child says nothing about the parent's
    # fingerprints. The old entries' tfms close here in the child where nothing else holds them.
    _lock = threading.RLock()
    _lru = OrderedDict()
    _secret = None


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
        out = _recv(op, self._size, self._alg)  # exactly self._size bytes, or it raised
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
