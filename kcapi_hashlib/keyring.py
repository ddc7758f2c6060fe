"""Keys held in the kernel keyring, used by the kernel's crypto without their bytes ever entering this process.

    from kcapi_hashlib.keyring import KernelKey
    key = KernelKey.find("myapp:mac-key")                  # a "logon" key someone added (keyctl add logon ...)
    hmac.new(key, b"message", "sha256").hexdigest()        # kcapi_hashlib.hmac, or hmac itself after install()

AF_ALG (Linux >= 6.2) takes a key from the keyring with setsockopt(ALG_SET_KEY_BY_KEY_SERIAL): the kernel copies
the key's payload into the transform itself (crypto/af_alg.c: alg_setkey_by_key_serial). The key types it takes
are "logon" (which userspace can never read back), "user", and, where the kernel has them, "encrypted" and
"trusted". A KernelKey is only the key's serial number, type and description: it has no bytes to give (no
__bytes__, no buffer, not picklable), so wherever the kernel cannot do the work (no AF_ALG, a kernel before 6.2,
an algorithm it lacks) there is no userspace fallback under any policy: the error says so.

A KernelKey works where a key is given: hmac.new/hmac.digest/hmac.HMAC, Hash.HMAC.new, Hash.CMAC.new (AES, DES3,
...), hashlib.blake2b(key=)/Hash.BLAKE2b.new(key=) at the kernel's digest sizes (20, 32, 48, 64 bytes), and
Cipher.AES.new(key, mode) for MODE_ECB, CBC, CTR, CFB, OFB and GCM (other modes raise TypeError naming the mode).
PBKDF2 with a keyring password is refused (hashlib's TypeError for a non-buffer password). Each use of a cached
transform costs one keyctl more than a bytes key (the revocation check): 3 syscalls per hmac.new().digest() instead
of 2.

Size. The kernel tells a "user" key's payload length without copying it (KEYCTL_READ with no buffer); a "logon"
key's length can be read by nobody, so it is known only when this process added the key or the caller declares it
(size=). len(key) is that size, or TypeError when it is unknown; the kernel checks the size against the
algorithm anyway (EINVAL -> ValueError naming the key).

Revoking or invalidating a key (here, or with keyctl elsewhere) makes its next use raise KeyringError naming the
serial; the cached transforms keyed with it are dropped (each cache hit asks the kernel, one keyctl, whether the key
is still usable). A key whose payload is updated in place keeps its serial: call hmac.clear_key_cache() then.
"""

from __future__ import annotations

import errno
from typing import Any, NoReturn, Optional, Union, final

from . import _afalg, _policy
from ._afalg import KeyringError
from ._afalg import keyed as _keyed
from ._afalg import keyring as _kr

Buffer = Union[bytes, bytearray, memoryview]

#: the key types AF_ALG takes a payload from (crypto/af_alg.c: alg_setkey_by_key_serial)
KEY_TYPES = _kr.ALG_KEY_TYPES
#: the special keyrings by name (include/uapi/linux/keyctl.h KEY_SPEC_*)
KEYRINGS = tuple(_kr.KEYRINGS)
#: KernelKey.add's default permissions: everything for a possessor, nothing for anyone else (the key's uid and
#: gid, others): KEY_POS_VIEW | KEY_POS_READ | KEY_POS_WRITE | KEY_POS_SEARCH | KEY_POS_LINK | KEY_POS_SETATTR
#: (include/linux/key.h), as `keyctl setperm KEY 0x3f000000` sets them
POSSESSOR_ONLY = 0x3F000000

_NO_BYTES = (
    "a KernelKey has no bytes to give: its key lives in the kernel keyring (serial {serial}) and is used there "
    "by AF_ALG without ever entering this process"
)


def _keyring_id(keyring: Union[str, int, KernelKey]) -> int:
    if isinstance(keyring, KernelKey):
        return keyring.serial
    if isinstance(keyring, bool) or not isinstance(keyring, (str, int)):
        raise TypeError(
            f"keyring must be a keyring name ({', '.join(KEYRINGS)}) or serial, not {type(keyring).__name__}"
        )
    if isinstance(keyring, int):
        return keyring
    try:
        return _kr.KEYRINGS[keyring]
    except KeyError:
        raise ValueError(
            f"keyring {keyring!r} is not one of {', '.join(KEYRINGS)} (or give a keyring's serial)"
        ) from None


def _check_type(key_type: str, what: str) -> None:
    if key_type not in KEY_TYPES:
        raise ValueError(
            f"{what} is a {key_type!r} key: AF_ALG takes only {', '.join(repr(t) for t in KEY_TYPES)} keys "
            "(crypto/af_alg.c: alg_setkey_by_key_serial answers any other type with ENOPROTOOPT)"
        )


def _check_size(size: Optional[int]) -> Optional[int]:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int (the key's length in bytes), not {type(size).__name__}")
    if size < 1:
        raise ValueError(f"size must be at least 1 byte, not {size}")
    return size


@final
class KernelKey:
    """A key in the kernel keyring (type "logon", "user", "encrypted" or "trusted"), by serial.

    Made by KernelKey.add(), KernelKey.find() or KernelKey.from_serial(); it holds no key bytes and gives none."""

    __slots__ = ("_serial", "_type", "_description", "_size")

    _serial: int
    _type: Optional[str]
    _description: Optional[str]
    _size: Optional[int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("KernelKey objects are made by KernelKey.add(), KernelKey.find() or KernelKey.from_serial()")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("KernelKey cannot be subclassed (a subclass could hold or hand out key bytes)")

    @classmethod
    def _make(cls, serial: int, key_type: Optional[str], description: Optional[str], size: Optional[int]) -> KernelKey:
        obj = object.__new__(cls)
        object.__setattr__(obj, "_serial", serial)
        object.__setattr__(obj, "_type", key_type)
        object.__setattr__(obj, "_description", description)
        object.__setattr__(obj, "_size", size)
        return obj

    @classmethod
    def _learn(cls, serial: int, size: Optional[int]) -> KernelKey:
        """The KernelKey for serial: its type and description (KEYCTL_DESCRIBE, view permission; without it both
        stay unknown and AF_ALG's own lookup decides), its size as declared or as the kernel tells it."""
        try:
            key_type: Optional[str]
            description: Optional[str]
            key_type, description = _kr.describe(serial)
        except KeyringError as e:
            if e.errno != errno.EACCES:
                raise
            _kr.check(serial)  # not viewable, but AF_ALG needs search permission only: usable if this passes
            key_type = description = None
        if key_type is not None:
            _check_type(key_type, f"key {serial}")
        if key_type == "user":
            try:
                learned: Optional[int] = _kr.payload_size(serial)
            except KeyringError:
                learned = None  # no read permission: unknown, unless declared
            if size is not None and learned is not None and size != learned:
                raise ValueError(f"key {serial}: size={size} was declared, but its payload is {learned} bytes")
            size = learned if learned is not None else size
        return cls._make(serial, key_type, description, size)

    @classmethod
    def from_serial(cls, serial: int, *, size: Optional[int] = None) -> KernelKey:
        """The key with this serial number (as `keyctl show` lists it). size=: its length in bytes, if known."""
        if isinstance(serial, bool) or not isinstance(serial, int):
            raise TypeError(f"serial must be an int, not {type(serial).__name__}")
        if serial < 1:
            raise ValueError(f"a key's serial is a positive number, not {serial}")
        return cls._learn(serial, _check_size(size))

    @classmethod
    def find(
        cls,
        description: str,
        type: str = "logon",
        keyring: Optional[Union[str, int, KernelKey]] = None,
        *,
        size: Optional[int] = None,
    ) -> KernelKey:
        """The key of `type` and `description` in this process's keyrings (request_key(2) without a callout:
        thread, process, session, then user keyrings), or searched for in one keyring (KEYCTL_SEARCH) when
        `keyring` is given ("session", "user", ..., or a keyring's serial). KeyringError (ENOKEY) if none."""
        if not isinstance(description, str) or not isinstance(type, str):
            raise TypeError("description and type must be str")
        _check_type(type, f"{description!r}")
        size = _check_size(size)
        if keyring is None:
            serial = _kr.request_key(type, description)
        else:
            serial = _kr.search(_keyring_id(keyring), type, description)
        key = cls._learn(serial, size)
        return key

    @classmethod
    def add(
        cls,
        type: str,
        description: str,
        payload: Buffer,
        keyring: Union[str, int, KernelKey] = "session",
        *,
        perm: Optional[int] = POSSESSOR_ONLY,
    ) -> KernelKey:
        """add_key(2): put `payload` into `keyring` as a key of `type` ("logon" by choice: nobody can read it
        back) and return it. The kernel copies the payload; nothing here keeps it (the caller may wipe its
        buffer afterwards). A key of the same type and description in that keyring is updated in place.

        perm: the key's permission mask, set with KEYCTL_SETPERM right after add_key(2). The default,
        POSSESSOR_ONLY (0x3f000000), lets only a possessor (a process that reaches the key through its thread,
        process or session keyring) do anything with it; the kernel's own default (security/keys/key.c:
        key_create_or_update with KEY_PERM_UNDEF) adds KEY_USR_VIEW, so any process of the key's uid can find
        and describe it, even one that left the session. None keeps the kernel's default. Between the two syscalls
        the key has the kernel's default; if KEYCTL_SETPERM fails (no setattr permission on a key that already
        existed), KeyringError is raised and the key keeps whatever mask it had."""
        if not isinstance(description, str) or not isinstance(type, str):
            raise TypeError("description and type must be str")
        _check_type(type, f"{description!r}")
        if type == "logon" and description.find(":") < 1:
            # logon_vet_description: a logon key's description needs a "service:" prefix (EINVAL otherwise)
            raise ValueError(f"a logon key's description needs a 'service:' prefix, not {description!r}")
        try:
            size = memoryview(payload).nbytes
        except TypeError:
            raise TypeError(f"payload must be a bytes-like object, not {payload.__class__.__name__!r}") from None
        if perm is not None and (isinstance(perm, bool) or not isinstance(perm, int) or not 0 <= perm <= 0xFFFFFFFF):
            raise ValueError(f"perm must be a key permission mask (0 to 0xffffffff) or None, not {perm!r}")
        serial = _kr.add_key(type, description, payload, _keyring_id(keyring))
        if perm is not None:
            _kr.setperm(serial, perm)
        return cls._make(serial, type, description, size or None)

    # --- what it is -----------------------------------------------------------------------------------------

    @property
    def serial(self) -> int:
        return self._serial

    @property
    def type(self) -> Optional[str]:
        """ "logon", "user", "encrypted" or "trusted" (None if this process may not view the key)."""
        return self._type

    @property
    def description(self) -> Optional[str]:
        return self._description

    @property
    def size(self) -> Optional[int]:
        """The key's length in bytes where known (added here, declared, or a readable "user" key), else None."""
        return self._size

    def __len__(self) -> int:
        if self._size is None:
            raise TypeError(
                f"the length of {self!r} is not known: a {self._type or 'keyring'} key's payload cannot be read "
                "from userspace; declare it with KernelKey.find(..., size=N) or from_serial(N, size=N)"
            )
        return self._size

    def __bool__(self) -> bool:
        return True  # a key, whatever len() knows

    def __repr__(self) -> str:
        return f"KernelKey(serial={self._serial}, type={self._type!r}, description={self._description!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KernelKey):
            return NotImplemented
        return self._serial == other._serial

    def __hash__(self) -> int:
        return hash((KernelKey, self._serial))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"KernelKey is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"KernelKey is immutable (cannot delete {name!r})")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            f"cannot pickle {self!r}: " + _NO_BYTES.format(serial=self._serial) + "; a serial means nothing in "
            "another process that does not possess the key (send the serial or description yourself)"
        )

    def __copy__(self) -> KernelKey:
        return self  # the same key: there is nothing to copy

    def __deepcopy__(self, memo: Any) -> KernelKey:
        return self

    # --- what one can do with it ----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise KeyringError unless AF_ALG can use the key now (the lookup alg_setkey_by_key_serial does)."""
        _kr.check(self._serial)

    def revoke(self) -> None:
        """keyctl revoke: the key can never be used again, here or by anyone; cached transforms keyed with it
        are dropped (setattr permission needed)."""
        try:
            _kr.revoke(self._serial)
        finally:
            _keyed.drop_serial(self._serial)

    def invalidate(self) -> None:
        """keyctl invalidate: the key is unlinked from every keyring and garbage-collected; cached transforms keyed
        with it are dropped (search permission needed)."""
        try:
            _kr.invalidate(self._serial)
        finally:
            _keyed.drop_serial(self._serial)

    def set_timeout(self, seconds: int) -> None:
        """keyctl timeout: the key expires `seconds` from now (0: never)."""
        _kr.set_timeout(self._serial, seconds)


NO_FALLBACK = "cannot fall back: the key is in the kernel keyring"


def _no_fallback(kind: str, name: str, key: KernelKey, reason: object) -> NoReturn:
    _policy.no_fallback(kind, name, reason, f"{NO_FALLBACK} ({key!r}), so only the kernel can compute with it")


def kernel_tfm(
    key: KernelKey, alg_type: str, name: str, kind: str, label: str, authsize: Optional[int] = None
) -> _afalg.Tfm:
    """The cached tfm (alg_type, name) keyed with `key` (ALG_SET_KEY_BY_KEY_SERIAL). Where the kernel cannot
    (no AF_ALG, no such algorithm, a kernel before 6.2 or without CONFIG_KEYS) it raises under every policy
    (kcapi_hashlib._policy.no_fallback: UnsupportedAlgorithm 'unsupported <kind> type <label>: ...'); a key the
    kernel refuses as unusable raises KeyringError naming the serial; a payload of a size the algorithm does not
    take raises ValueError."""
    try:
        return _keyed.cached_tfm(alg_type, name, _kr.Serial(key.serial), authsize=authsize)
    except _afalg.AlgUnavailable as e:
        _no_fallback(kind, label, key, e)
    except _afalg.KernelError as e:
        if isinstance(e, KeyringError):
            raise
        if e.errno == errno.ENOPROTOOPT:
            _no_fallback(kind, label, key, e)
        if e.errno == errno.EINVAL:
            raise ValueError(f"{label}: the kernel refused {key!r} as its key: {e}") from e
        raise


def unsupported(kind: str, label: str, key: KernelKey, why: object) -> NoReturn:
    """The request cannot be made of the kernel with a keyring key (a userspace-only hash, a parameter the kernel's
    algorithm lacks): raise under every policy."""
    _no_fallback(kind, label, key, why)


__all__ = ["KEYRINGS", "KEY_TYPES", "KernelKey", "KeyringError", "NO_FALLBACK", "POSSESSOR_ONLY"]
