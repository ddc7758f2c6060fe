"""HMAC (Keyed-Hashing for Message Authentication), computed by the kernel: a drop-in for the stdlib `hmac`.

    from kcapi_hashlib import hmac
    hmac.new(key, msg, "sha256").hexdigest()

The MAC is the kernel's `hmac(<hash>)` template: the key is set on a tfm socket with ALG_SET_KEY and each
object hashes on an op socket of that tfm (see kcapi_hashlib._afalg.keyed). Keyed tfms are cached per key
(bounded, indexed by a keyed fingerprint, never by the key bytes), so the common pattern of one key and many
messages costs one sendmsg + one recv per message; clear_key_cache() empties that cache.

Like the stdlib's HMAC, an object has either `_hmac` (here: the kernel's keyed hash) or, for a digestmod the
kernel cannot run as hmac(...) (your own hash class, say), `_inner`/`_outer` hash objects of the RFC 2104
construction (computed by kcapi_hashlib's kernel hashes when the digestmod names one). Hash names the kernel
lacks follow kcapi_hashlib's policy: strict raises ValueError('unsupported hash type NAME'), fallback uses
the standard library (counted, see kcapi_hashlib.fallback_counts()).

The key may be a kcapi_hashlib.keyring.KernelKey, a key in the kernel keyring: the kernel's hmac(<hash>) is keyed
from it (ALG_SET_KEY_BY_KEY_SERIAL, Linux >= 6.2) and its bytes never enter this process. There is no fallback for
it under any policy (see kcapi_hashlib.keyring).

The key is checked once, here, at the public entry point (the stdlib's types and messages); the keyed layer below
(kcapi_hashlib._afalg.keyed) receives the checked buffer or the keyring serial and never calls back.
"""

from __future__ import annotations

import hmac as _stdlib_hmac
import sys
import warnings as _warnings
from types import BuiltinFunctionType, ModuleType
from typing import Any, Callable, Optional, Union

from . import _afalg, _hash_args, _hashes, _policy
from . import keyring as _keyring
from ._afalg import keyed as _keyed
from ._algorithms import ROWS
from ._callable import as_builtin
from .keyring import KernelKey

Buffer = Union[bytes, bytearray, memoryview]

# The stdlib's constant-time comparison, re-exported (never reimplemented): _hashes.compare_digest where
# OpenSSL is present, else _operator._compare_digest, exactly as the stdlib hmac module chooses.
compare_digest = _stdlib_hmac.compare_digest

trans_5C = bytes((x ^ 0x5C) for x in range(256))
trans_36 = bytes((x ^ 0x36) for x in range(256))

# The size of the digests returned by HMAC depends on the underlying
# hashing module used.  Use digest_size from the instance of HMAC instead.
digest_size = None

_MISSING_DIGESTMOD = (
    "Missing required argument 'digestmod'."
    if sys.version_info >= (3, 13)
    else "Missing required parameter 'digestmod'."
)


class _NotKernel(ValueError):
    """The digestmod cannot be run as the kernel's hmac(...) (the stdlib's UnsupportedDigestmodError)."""


# --- which hash a digestmod designates ------------------------------------------------------------------

# Modules whose hash constructors are the stdlib's (OpenSSL's _hashlib, the builtin _sha2/_md5/... modules).
_STDLIB_HASH_MODULES = frozenset({"_hashlib", "_md5", "_sha1", "_sha256", "_sha512", "_sha2", "_sha3", "_blake2"})
# Packages whose hash modules follow PyCryptodome's API (module.new(data), object.oid).
_PYCRYPTODOME_STYLE = ("Crypto.Hash.", "Cryptodome.Hash.", "kcapi_hashlib.Hash.")
# Crypto.Hash module name -> the hash its new(data) makes (BLAKE2b's new() is keyword-only: no digestmod).
_MODULE_HASHES: dict[str, str] = {
    module: row.name for row in ROWS if row.module and not row.truncate for module in (row.module, *row.module_aliases)
}
# ASN.1 OIDs of hash objects (PyCryptodome's `oid` attribute). BLAKE2b objects are left out on purpose:
# their new() is keyword-only, so no HMAC implementation can use them as a digestmod.
_OID_HASHES: dict[str, str] = {row.oid: row.name for row in ROWS if row.oid}
_OURS: dict[Any, str] = {ctor: name for name, ctor in _hashes.CONSTRUCTORS.items()}


def _same_block_size(obj: Any, name: str) -> bool:
    # A module or object that claims another block size would pad the key differently: not the same HMAC.
    bs = getattr(obj, "block_size", None)
    return bs is None or bs == _hashes.ALGORITHMS[name].block_size


def _probe_openssl_text() -> bool:
    """Whether the running stdlib's hmac answers a name it has no hash for with OpenSSL's own text ('[digital
    envelope routines] unsupported': 3.10, and 3.11 builds such as Debian 12's 3.11.2) rather than hashlib's
    wording ('unsupported hash type NAME': later 3.11 releases, Debian's 3.13.5, 3.14+). Probed once, at import,
    on the stdlib's own hmac.digest (install() patches the hmac module only after importing this one), not
    read from the version."""
    probe = "kcapi-hashlib-no-such-hash"
    try:
        _stdlib_hmac.digest(b"", b"", probe)
    except ValueError as e:
        return probe not in str(e)
    return False  # pragma: no cover - a name nobody has


_OPENSSL_TEXT = _probe_openssl_text()


def _openssl_name_error(digestmod: Any, name: Optional[str]) -> None:
    """Where the stdlib's hmac.new/digest hand a name to OpenSSL (after checking key and msg) and pass its error
    through unchanged (_openssl_passes_its_text), raise exactly that for a name neither hashlib nor we know:
    OpenSSL's own HMAC constructor (the C module, which install() never replaces) is asked, with an empty key.
    A name OpenSSL does know (md5-sha1, sm3...) raises nothing and follows the policy. Elsewhere the stdlib words
    it as hashlib does, which the policy's error already is."""
    if name is not None or not isinstance(digestmod, str) or not _OPENSSL_TEXT:
        return
    from _hashlib import hmac_new

    hmac_new(b"", b"", digestmod)


def identify(digestmod: Any) -> Optional[str]:
    """hashlib's canonical name of the hash `digestmod` designates, when that is certain without calling it:
    a name, a hashlib constructor (the stdlib's or ours), a PyCryptodome-style hash module or hash object.
    None for anything else (e.g. a class of your own), which is then used as given."""
    if isinstance(digestmod, str):
        return _hashes.canonical_name(digestmod)
    try:
        ours = _OURS.get(digestmod)
    except (TypeError, ValueError):  # unhashable (a writable memoryview raises ValueError)
        return None
    if ours is not None:
        return ours
    if isinstance(digestmod, ModuleType):
        package, _, leaf = digestmod.__name__.rpartition(".")
        name = _MODULE_HASHES.get(leaf) if package + "." in _PYCRYPTODOME_STYLE else None
        return name if name is not None and _same_block_size(digestmod, name) else None
    module = getattr(digestmod, "__module__", None)
    if callable(digestmod) and module in _STDLIB_HASH_MODULES:
        ctor = getattr(digestmod, "__name__", "")
        name = _hashes.canonical_name(ctor[len("openssl_") :] if ctor.startswith("openssl_") else ctor)
        return name if name is not None and name != "new" else None
    cls_module = getattr(type(digestmod), "__module__", "") or ""
    if cls_module.startswith(_PYCRYPTODOME_STYLE):
        name = _OID_HASHES.get(getattr(digestmod, "oid", None) or "")
        return name if name is not None and _same_block_size(digestmod, name) else None
    return None


def kernel_tfm(name: str, key: Buffer, cached: bool = True) -> Optional[_afalg.Tfm]:
    """The kernel's hmac(<name>) tfm keyed with `key` (from the key cache unless cached=False), or None if the
    kernel has no such hash or hmac template here. KernelError (e.g. ENOMEM) propagates.

    `key` is a buffer the public entry point has already checked (validated once, there: nothing below calls back
    into this module); an over-long key is hashed by the keyed layer before setsockopt (keyed.Prehash)."""
    alg = _hashes.ALGORITHMS[name]
    if alg.kernel is None:
        return None
    prehash = (alg.kernel, alg.digest_size)
    try:
        if cached:
            return _keyed.cached_tfm("hash", f"hmac({alg.kernel})", key, prehash)
        return _keyed.private_tfm("hash", f"hmac({alg.kernel})", key, prehash)
    except _afalg.AlgUnavailable:
        return None


_PY314 = sys.version_info >= (3, 14)  # 3.14's HMAC objects: _inner and _outer are None on the kernel's path

# hash name -> ("hmac(<kernel name>)", kernel_tfm's prehash, digest size, kernel_hmac's object name, block size)
# for every canonical name (identify()'s answer for a str) whose hash the kernel has: the fast paths of digest()
# and HMAC._init_hmac. Built once at import, never changed (ALGORITHMS is static), so it is read without a lock.
_KERNEL_HMAC: dict[str, tuple[str, tuple[str, int], int, str, int]] = {
    name: (f"hmac({alg.kernel})", (alg.kernel, alg.digest_size), alg.digest_size, f"hmac-{name}", alg.block_size)
    for name, alg in _hashes.ALGORITHMS.items()
    if alg.kernel is not None and name == name.lower()
}


def kernel_hmac(name: Optional[str], key: Buffer) -> Optional[_hashes.HASH]:
    """The kernel's keyed hmac(<name>) object for a validated key buffer, or None (digestmod not the kernel's)."""
    if name is None:
        return None
    tfm = kernel_tfm(name, key)
    if tfm is None:
        return None
    alg = _hashes.ALGORITHMS[name]
    return _hashes.HASH._create(f"hmac-{name}", alg.digest_size, alg.block_size, tfm)


def _keyring_tfm(key: KernelKey, digestmod: Any) -> tuple[str, _afalg.Tfm]:
    """(hash name, hmac tfm) for a kernel keyring key: only the kernel's hmac(<hash>) can use it, so a digestmod
    that is no kernel hash (a class of your own, shake_*, sha512_256) raises under every policy: there are no
    key bytes to run RFC 2104 over in userspace."""
    name = identify(digestmod)
    if name is None:
        if isinstance(digestmod, str):
            _keyring.unsupported("hash", digestmod, key, f"the kernel has no hash named {digestmod!r}")
        raise TypeError(
            f"a kernel keyring key needs a digestmod the kernel runs as hmac(<hash>) (a hash name, a hashlib "
            f"constructor or a Crypto.Hash module), not {digestmod!r}: {_keyring.NO_FALLBACK} ({key!r})"
        )
    alg = _hashes.ALGORITHMS[name]
    if alg.kernel is None:
        _keyring.unsupported("hash", name, key, _hashes.no_kernel_hash(name))
    return name, _keyring.kernel_tfm(key, "hash", f"hmac({alg.kernel})", "hash", name)


def keyring_hmac(key: KernelKey, digestmod: Any) -> _hashes.HASH:
    name, tfm = _keyring_tfm(key, digestmod)
    alg = _hashes.ALGORITHMS[name]
    return _hashes.HASH._create(f"hmac-{name}", alg.digest_size, alg.block_size, tfm)


_buffer = _hashes.byte_view  # a C function's Py_buffer argument: TypeError, or BufferError if not C-contiguous


def _is_buffer(obj: Any) -> bool:
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


def _userspace_only(name: Optional[str]) -> bool:
    """True for hashes the kernel has no AF_ALG hash for (shake_*, sha512_224, sha512_256): the policy decides,
    and under fallback the stdlib's hmac computes them, with its own behaviour (an XOF: ValueError on 3.10+)."""
    if name is None or _hashes.ALGORITHMS[name].kernel is not None:
        return False
    _policy.unavailable("hash", name, _hashes.no_kernel_hash(name))
    return True


def _stdlib_digestmod(name: str, digestmod: Any) -> Any:
    """What to give the stdlib's hmac for digestmod: the stdlib's own constructor in place of ours."""
    if isinstance(digestmod, str) or _OURS.get(digestmod) is None:
        return digestmod
    return _hash_args.stdlib(name)


def _c_path(digest: Any) -> bool:
    """Whether the stdlib's hmac.digest() gives `digest` to its C code: names, and hashlib's C constructors (ours
    stand for those)."""
    if isinstance(digest, str):
        return True
    if isinstance(digest, BuiltinFunctionType):
        return True
    try:
        return digest in _OURS
    except (TypeError, ValueError):
        return False


def _digest_cons(digestmod: Any) -> Callable[..., Any]:
    """The hash constructor of the RFC 2104 construction: ours for every hash we can name, else digestmod's."""
    name = identify(digestmod)
    if name is not None:
        ctor = _hashes.CONSTRUCTORS[name]
        return lambda d=b"": ctor(d)
    if callable(digestmod):
        return digestmod  # type: ignore[no-any-return]
    if isinstance(digestmod, str):
        return lambda d=b"": _hashes.new(digestmod, d)
    return lambda d=b"": digestmod.new(d)


def _select_blocksize(obj: Any, default: int, stacklevel: int = 3) -> int:
    """The block size of the RFC 2104 construction, with the stdlib's RuntimeWarnings (hmac._select_blocksize)."""
    if hasattr(obj, "block_size"):
        blocksize: int = obj.block_size
        if blocksize < 16:
            _warnings.warn(
                f"block_size of {blocksize:d} seems too small; using our default of {default:d}.",
                RuntimeWarning,
                stacklevel,
            )
            blocksize = default
    else:
        _warnings.warn(
            f"No block_size attribute on given digest object; Assuming {default:d}.", RuntimeWarning, stacklevel
        )
        blocksize = default
    return blocksize


def _is_shake_constructor(digest_like: Any) -> bool:
    """3.15's hmac._is_shake_constructor: whether digest_like makes SHAKE objects (refused as a digestmod)."""
    name: Any
    if isinstance(digest_like, str):
        name = digest_like
    else:
        h = digest_like() if callable(digest_like) else digest_like.new()
        name = getattr(h, "name", None)
        if not isinstance(name, str):
            return False
    return bool(name.startswith(("shake", "SHAKE")))


_SLOTS: tuple[str, ...] = ("_hmac", "_inner", "_outer", "block_size", "digest_size")


class HMAC:
    """RFC 2104 HMAC class.  Also complies with RFC 4231.

    This supports the API for Cryptographic Hash Functions (PEP 247).
    """

    blocksize = 64  # 512-bit HMAC; can be changed in subclasses.

    __slots__ = _SLOTS

    _hmac: Any  # the kernel's keyed hash (a HASH); the stdlib's HMAC for hashes only userspace has; or None
    _inner: Any
    _outer: Any
    block_size: int
    digest_size: int

    def __init__(self, key: Union[Buffer, KernelKey], msg: Optional[Buffer] = None, digestmod: Any = "") -> None:
        """Create a new HMAC object.

        key: bytes or buffer, key for the keyed hash object; or a kcapi_hashlib.keyring.KernelKey (a key in the
             kernel keyring, used by the kernel's hmac(<hash>) without its bytes entering this process).
        msg: bytes or buffer, Initial input for the hash or None.
        digestmod: A hash name suitable for hashlib.new(). *OR*
                   A hashlib constructor returning a new hash object. *OR*
                   A module supporting PEP 247.

                   Required as of 3.8, despite its position after the optional
                   msg argument.  Passing it as a keyword argument is
                   recommended, though not required for legacy API reasons.
        """

        if type(key) is bytes and type(digestmod) is str:
            # The common case: a bytes key and a canonical name of a kernel hash. The general path's steps for it
            # (the key and digestmod checks, then _init_hmac), without those that cannot apply (identify,
            # _openssl_name_error, _userspace_only, kernel_hmac's lookups).
            fast = _KERNEL_HMAC.get(digestmod)
            if fast is not None:
                try:
                    tfm = _keyed.cached_tfm("hash", fast[0], key, fast[1])
                except _afalg.AlgUnavailable:
                    tfm = None
                if tfm is None:
                    self._init_old(key, msg, digestmod)  # as _init_hmac's _NotKernel
                    return
                # msg (if any) goes in as the new object's first bytes, as HASH's constructors take theirs: what
                # _adopt's h.update(msg) does on a fresh object (HASH._create raises update()'s errors), less a
                # call. Then _adopt(h, None, digestmod)'s stores, inline.
                self._hmac = _hashes.HASH._create(fast[3], fast[2], fast[4], tfm, b"" if msg is None else msg)
                self.digest_size = fast[2]
                self.block_size = fast[4]
                if _PY314:
                    self._inner = self._outer = None
                return

        # The key is checked here, once; below, the kernel gets these bytes (or this keyring key) as they are.
        if isinstance(key, KernelKey):
            if not digestmod:
                raise TypeError(_MISSING_DIGESTMOD)
            self._init_keyring(key, msg, digestmod)
            return

        if not isinstance(key, (bytes, bytearray)):
            raise TypeError(f"key: expected bytes or bytearray, but got {type(key).__name__!r}")

        if not digestmod:
            raise TypeError(_MISSING_DIGESTMOD)

        try:
            self._init_hmac(key, msg, digestmod)
        except _NotKernel:
            self._init_old(key, msg, digestmod)

    def _init_hmac(self, key: Buffer, msg: Optional[Buffer], digestmod: Any) -> None:
        """The kernel's hmac(<hash>): raises _NotKernel where it cannot serve digestmod (__init__ serves the
        common case, a bytes key and a canonical name, before it gets here)."""
        name = identify(digestmod)
        _openssl_name_error(digestmod, name)
        h: Any
        if _userspace_only(name):
            h = _stdlib_hmac.new(key, msg, _stdlib_digestmod(name, digestmod))  # type: ignore[arg-type]
            msg = None
        else:
            h = kernel_hmac(name, _buffer(key))
        if h is None:
            raise _NotKernel(f"the kernel has no hmac for {digestmod!r}")
        self._adopt(h, msg, digestmod)

    def _init_keyring(self, key: KernelKey, msg: Optional[Buffer], digestmod: Any) -> None:
        """The kernel's hmac(<hash>) keyed from the kernel keyring (no RFC 2104 fallback: no bytes to run it on)."""
        self._adopt(keyring_hmac(key, digestmod), msg, digestmod)

    def _adopt(self, h: Any, msg: Optional[Buffer], digestmod: Any) -> None:
        """Make `h` (a kernel or stdlib HMAC object) this object's state, then feed it msg."""
        if msg is not None:
            h.update(msg)
        self._hmac = h
        self.digest_size = h.digest_size
        self.block_size = h.block_size
        if _PY314:
            self._inner = self._outer = None  # as 3.14's _init_openssl_hmac/_init_builtin_hmac

    if sys.version_info >= (3, 14):
        # 3.14's HMAC has an initializer per C implementation (OpenSSL's, HACL*'s); the kernel stands for both.
        _init_openssl_hmac = _init_hmac
        _init_builtin_hmac = _init_hmac

    def _init_old(self, key: Buffer, msg: Optional[Buffer], digestmod: Any) -> None:
        """RFC 2104 over hash objects (kernel hashes wherever digestmod names a hash), as the stdlib's."""
        digest_cons = _digest_cons(digestmod)
        if sys.version_info >= (3, 15) and _is_shake_constructor(digest_cons):
            raise ValueError(f"unsupported hash algorithm {digestmod}")

        self._hmac = None
        self._outer = digest_cons()
        self._inner = digest_cons()
        self.digest_size = self._inner.digest_size

        blocksize = _select_blocksize(self._inner, self.blocksize, 3)

        if len(key) > blocksize:
            key = digest_cons(key).digest()

        # self.blocksize is the default blocksize. self.block_size is
        # effective block size as well as the public API attribute.
        self.block_size = blocksize

        key = bytes(key).ljust(blocksize, b"\0")
        self._outer.update(key.translate(trans_5C))
        self._inner.update(key.translate(trans_36))
        if msg is not None:
            self.update(msg)

    @property
    def name(self) -> str:
        if self._hmac:
            return str(self._hmac.name)
        else:
            return f"hmac-{self._inner.name}"

    def update(self, msg: Buffer) -> None:
        """Feed data from msg into this hashing object."""
        inst = self._hmac or self._inner
        inst.update(msg)

    def copy(self) -> HMAC:
        """Return a separate copy of this hashing object.

        An update to this copy won't affect the original object.
        """
        # Call __new__ directly to avoid the expensive __init__.
        other = self.__class__.__new__(self.__class__)
        other.digest_size = self.digest_size
        other.block_size = self.block_size  # (the stdlib's copy() forgets it: AttributeError on its copies)
        if self._hmac:
            other._hmac = self._hmac.copy()
            other._inner = other._outer = None
        else:
            other._hmac = None
            other._inner = self._inner.copy()
            other._outer = self._outer.copy()
        return other

    def _current(self) -> Any:
        """Return a hash object for the current state.

        To be used only internally with digest() and hexdigest().
        """
        if self._hmac:
            return self._hmac
        else:
            h = self._outer.copy()
            h.update(self._inner.digest())
            return h

    def digest(self) -> bytes:
        """Return the hash value of this hashing object.

        This returns the hmac value as bytes.  The object is
        not altered in any way by this function; you can continue
        updating the object after calling this function.
        """
        h = self._hmac or self._current()
        return h.digest()  # type: ignore[no-any-return]

    def hexdigest(self) -> str:
        """Like digest(), but returns a string of hexadecimal digits instead."""
        h = self._current()
        return h.hexdigest()  # type: ignore[no-any-return]


@as_builtin()
def new(key: Union[Buffer, KernelKey], msg: Optional[Buffer] = None, digestmod: Any = "") -> HMAC:
    """Create a new hashing object and return it.

    key: bytes or buffer, The starting key for the hash (or a kcapi_hashlib.keyring.KernelKey).
    msg: bytes or buffer, Initial input for the hash, or None.
    digestmod: A hash name suitable for hashlib.new(). *OR*
               A hashlib constructor returning a new hash object. *OR*
               A module supporting PEP 247.

               Required as of 3.8, despite its position after the optional
               msg argument.  Passing it as a keyword argument is
               recommended, though not required for legacy API reasons.

    You can now feed arbitrary bytes into the object using its update()
    method, and can ask for the hash value at any time by calling its digest()
    or hexdigest() methods.
    """
    return HMAC(key, msg, digestmod)


@as_builtin()
def digest(key: Union[Buffer, KernelKey], msg: Buffer, digest: Any) -> bytes:
    """Fast inline implementation of HMAC.

    key: bytes or buffer, The key for the keyed hash object (or a kcapi_hashlib.keyring.KernelKey).
    msg: bytes or buffer, Input message.
    digest: A hash name suitable for hashlib.new() for best performance. *OR*
            A hashlib constructor returning a new hash object. *OR*
            A module supporting PEP 247.
    """
    if type(digest) is str and type(key) is bytes:
        # The common case first: a bytes key and a canonical name of a kernel hash. What the general path below
        # does for it, without the steps that cannot apply (identify, _userspace_only, _c_path, the key's buffer
        # check, _openssl_name_error, kernel_tfm's lookups): the same checks in the same order, the same calls.
        fast = _KERNEL_HMAC.get(digest)
        if fast is not None:
            m = msg if type(msg) is bytes else _buffer(msg)  # the C path's TypeError/BufferError for msg
            try:
                tfm = _keyed.cached_tfm("hash", fast[0], key, fast[1])
            except _afalg.AlgUnavailable:
                tfm = None  # as kernel_tfm's None: RFC 2104 below, on the key and msg the C path takes
            if tfm is not None:
                return _afalg.exchange(tfm, m, fast[2])
            return _compute_digest_fallback(key, _buffer(m), digest)
    if isinstance(key, KernelKey):
        return _keyring_digest(key, msg, digest)
    name = identify(digest)
    if _userspace_only(name):
        return _stdlib_hmac.digest(key, msg, _stdlib_digestmod(name, digest))  # type: ignore[arg-type, arg-type]
    if _c_path(digest):
        # As the stdlib's C hmac_digest: key and msg are buffers (any, measured in bytes), checked before the
        # name is looked up; a name it has no hash for goes on to the Python code below with the inputs given.
        k, m = _buffer(key), _buffer(msg)
        _openssl_name_error(digest, name)
        if name is not None:
            tfm = kernel_tfm(name, k)
            if tfm is not None:
                return _afalg.hash_oneshot(tfm, (m,), _hashes.ALGORITHMS[name].digest_size)
            key, msg = k.tobytes(), m  # RFC 2104 over kernel hashes, on the bytes the C path would take
    elif name is not None and isinstance(key, (bytes, bytearray)) and _is_buffer(msg):
        # The stdlib's Python code (key + padding: bytes or bytearray keys only), on the kernel's hmac.
        tfm = kernel_tfm(name, key)
        if tfm is not None:
            return _afalg.hash_oneshot(tfm, (_buffer(msg),), _hashes.ALGORITHMS[name].digest_size)

    return _compute_digest_fallback(key, msg, digest)


def _keyring_digest(key: KernelKey, msg: Buffer, digest: Any) -> bytes:
    """hmac.digest() with a kernel keyring key: one sendmsg + one recv on the cached keyed tfm."""
    m = _buffer(msg)
    name, tfm = _keyring_tfm(key, digest)
    return _afalg.hash_oneshot(tfm, (m,), _hashes.ALGORITHMS[name].digest_size)


def _compute_digest_fallback(key: Buffer, msg: Buffer, digest: Any) -> bytes:
    """RFC 2104 over hash objects, as the stdlib's hmac.digest() does it where its C code cannot (3.14 calls it
    _compute_digest_fallback; 3.14 checks the key's type and warns about block sizes, 3.15 refuses SHAKE)."""
    if sys.version_info >= (3, 14) and not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key: expected bytes or bytearray, but got {type(key).__name__!r}")
    digest_cons = _digest_cons(digest)
    if sys.version_info >= (3, 15) and _is_shake_constructor(digest_cons):
        raise ValueError(f"unsupported hash algorithm {digest}")

    inner = digest_cons()
    outer = digest_cons()
    if sys.version_info >= (3, 14):
        blocksize = _select_blocksize(inner, HMAC.blocksize)
    else:
        blocksize = getattr(inner, "block_size", 64)
    if len(key) > blocksize:
        key = digest_cons(key).digest()
    key = key + b"\x00" * (blocksize - len(key))  # type: ignore[operator]  # the stdlib's TypeError for a memoryview
    inner.update(key.translate(trans_36))
    outer.update(key.translate(trans_5C))
    inner.update(msg)
    outer.update(inner.digest())
    return outer.digest()  # type: ignore[no-any-return]


def clear_key_cache() -> int:
    """Close the cached keyed tfms (HMAC, CMAC and keyed BLAKE2b keys) that no live object uses, and forget
    them all. Returns how many keys were cached. (The cache is also emptied in a forked child.)"""
    return _keyed.clear()


__all__ = ["HMAC", "new", "digest", "compare_digest", "digest_size", "trans_5C", "trans_36", "clear_key_cache"]
