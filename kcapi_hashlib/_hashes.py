"""hashlib's surface, computed by the kernel's AF_ALG "hash" type. No socket is touched here (see _afalg).

Syscall design (every syscall of the process counts, see benchmarks/ and tests/kernel/test_syscalls.py):
- Small data stays in a userspace buffer until it must reach the kernel, so `sha256(b).digest()` is one
  sendmsg + one recv on a pooled op socket, and many small updates cost nothing until the digest.
- Once the buffer passes _afalg.hash.FLUSH bytes the object takes an op socket and streams (MSG_MORE); from then on
  digest() clones the state with accept() and finalizes the clone, so the object itself is never finalized.

How the running Python's hashlib takes its arguments (and its own constructors, for the fallback) is _hash_args';
file_digest() is _file_digest's.
"""

from __future__ import annotations

import errno
import inspect
import operator
from typing import Any, Callable, NamedTuple, Optional

from . import _afalg, _hash_object, _policy
from . import keyring as _keyring
from ._afalg import drivers, procfs
from ._algorithms import BY_NAME, ROWS, Algorithm
from ._callable import as_builtin, make_builtin
from ._hash_args import (
    BLAKE2_DATA,
    BLAKE2_DEFAULTS,
    BLAKE2_KEYWORDS,
    DATA,
    GUARANTEED,
    STDLIB,
    STDLIB_NEW,
    STRING_ALIAS,
    TREE_DEFAULTS,
    UNSUPPORTED,
    arguments,
    blake2_signature,
    signature,
    stdlib,
)
from ._hash_object import Buffer
from .keyring import KernelKey

# hashlib name -> its facts (kernel cra_name, hashlib's digest_size / block_size): all in kcapi_hashlib._algorithms.
ALGORITHMS: dict[str, Algorithm] = BY_NAME

# Names hashlib.new() accepts through OpenSSL besides the canonical ones (matched after lower()).
_ALIASES: dict[str, str] = {alias: row.name for row in ROWS for alias in row.aliases}

_BLAKE2_KERNEL_SIZES: dict[str, tuple[int, ...]] = {row.name: row.kernel_sizes for row in ROWS if row.kernel_sizes}


def canonical_name(name: str) -> Optional[str]:
    n = name.lower()
    if n in ALGORITHMS:
        return n
    return _ALIASES.get(n)


def kernel_name(name: str, digest_size: Optional[int] = None) -> Optional[str]:
    alg = ALGORITHMS[name]
    if alg.kernel is None or digest_size is None or digest_size == alg.digest_size:
        return alg.kernel
    if digest_size in _BLAKE2_KERNEL_SIZES.get(name, ()):
        return f"{name}-{digest_size * 8}"
    return None


# Defined in _hash_object, used through here by the other modules: hashlib's object and the byte views.
HASH = _hash_object.HASH
byte_view = _hash_object.byte_view
tp_name = _hash_object.tp_name


def no_kernel_hash(name: str, digest_size: Optional[int] = None) -> str:
    """Why hash `name` (of `digest_size` bytes, for BLAKE2's sizes) is never the kernel's: its one sentence."""
    return f"the kernel has no AF_ALG hash for {name}" + (f" of {digest_size} bytes" if digest_size else "")


def _kernel_or_policy(
    name: str,
    kname: Optional[str],
    why_not: Optional[str],
    digest_size: int,
    key: Optional[Buffer] = None,
    data: object = b"",
) -> Optional[HASH]:
    """The kernel object for name holding `data` (hashlib's TypeError for a non-buffer, once the kernel has the
    algorithm), or None where the policy says fall back (strict raises)."""
    reason: object = why_not
    if kname is not None and why_not is None:
        try:
            if key:
                tfm = _afalg.keyed_tfm("hash", kname, key)
            else:
                tfm = _afalg.tfm("hash", kname)
        except _afalg.AlgUnavailable as e:
            reason = e
        else:
            return HASH._create(name, digest_size, ALGORITHMS[name].block_size, tfm, data)
    _policy.unavailable("hash", name, no_kernel_hash(name) if reason is None else reason)
    return None


def _make(alg: Algorithm, data: object, usedforsecurity: bool) -> Any:
    """_kernel_or_policy(alg.name, alg.kernel, None, alg.digest_size, data=data) done inline (the named
    constructors' path, with no key and no reason known beforehand), else the stdlib's object."""
    reason: object = None
    if alg.kernel is not None:
        try:
            tfm = _afalg.tfm("hash", alg.kernel)
        except _afalg.AlgUnavailable as e:
            reason = e
        else:
            # a non-buffer (None too) gets hashlib's TypeError ("object supporting the buffer API required")
            return HASH._create(alg.name, alg.digest_size, alg.block_size, tfm, data)
    return _unserved(alg, data, usedforsecurity, reason)


def _unserved(alg: Algorithm, data: object, usedforsecurity: bool, reason: object) -> Any:
    """The policy's answer for a hash the kernel does not serve (`reason`: why, None if it has no such hash):
    strict raises, fallback counts it and returns the stdlib's object."""
    name = alg.name
    _policy.unavailable("hash", name, no_kernel_hash(name) if reason is None else reason)
    return stdlib(name)(data, usedforsecurity=usedforsecurity)


def _constructor(name: str) -> Callable[..., Any]:
    original = stdlib(name)
    keywords = frozenset({"usedforsecurity"})
    alg = ALGORITHMS[name]
    kname, digest_size, block_size = alg.kernel, alg.digest_size, alg.block_size
    create = HASH._create

    def constructor(*args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) > 1:
            data, rest = arguments(original, DATA, keywords, args, kwargs)
            return _make(alg, data, rest.get("usedforsecurity", True))
        # The common case, sha256(data): _make, inline (one tfm lookup, as there).
        data = args[0] if args else b""
        if kname is None:
            return _unserved(alg, data, True, None)
        try:
            tfm = _afalg.tfm("hash", kname)
        except _afalg.AlgUnavailable as e:
            return _unserved(alg, data, True, e)
        return create(name, digest_size, block_size, tfm, data)

    def reference(string: Buffer = b"", *, usedforsecurity: bool = True) -> None: ...

    constructor.__name__ = constructor.__qualname__ = name
    # hashlib's own signature, version by version: (string=b'', *, usedforsecurity=True) up to 3.13,
    # (data=b'', *, usedforsecurity=True, string=None) from 3.14.
    constructor.__signature__ = signature(STDLIB.get(name), inspect.signature(reference))  # type: ignore[attr-defined]
    constructor.__doc__ = f"Return a new {name} hash object computed by the kernel; optionally initialized with data."
    # A builtin-like callable, as hashlib's: it never binds as a method (`class H: digest = hashlib.sha256`).
    return make_builtin(constructor, "kcapi_hashlib")


def _blake2(
    name: str,
    data: Buffer,
    digest_size: int,
    key: Buffer,
    salt: Buffer,
    person: Buffer,
    tree: dict[str, Any],
    usedforsecurity: bool,
) -> Any:
    if isinstance(key, KernelKey):
        return _blake2_keyring(name, data, digest_size, key, salt, person, tree, usedforsecurity)
    # Every argument check is the original's own, on the running Python: its constructor is called with these
    # arguments and, for a valid key, zero bytes of the same length (no user data; nothing is hashed), so the
    # exception types, messages and their order (digest_size, key, salt, person, tree, then data) are
    # hashlib's exactly. Only a key the original refuses is passed as given, for its error.
    try:
        key_view: Optional[memoryview] = memoryview(key)
    except TypeError:
        key_view = None
    probe_key = bytes(key_view.nbytes) if key_view is not None and key_view.c_contiguous else key
    STDLIB[name](
        digest_size=digest_size, key=probe_key, salt=salt,
        person=person, usedforsecurity=usedforsecurity, **tree,
    )  # fmt: skip
    size = operator.index(digest_size)
    params = {k: bool(v) if k == "last_node" else operator.index(v) for k, v in tree.items()}
    kname = kernel_name(name, size)
    why_not = None
    if memoryview(salt).nbytes or memoryview(person).nbytes or params != TREE_DEFAULTS:
        # crypto/blake2b_generic.c takes only a key (setkey) and a digest size (the algorithm name).
        why_not = f"the kernel's {name} takes no salt, person or tree parameters"
    elif kname is None:
        sizes = ", ".join(str(s) for s in _BLAKE2_KERNEL_SIZES[name])
        why_not = f"the kernel's {name} has digest sizes {sizes} only, not {size}"
    kernel_key = key_view.tobytes() if key_view is not None and key_view.nbytes else None  # bytes, in C order
    h = _kernel_or_policy(name, kname, why_not, size, kernel_key, data)
    if h is None:
        return STDLIB[name](
            data, digest_size=digest_size, key=key, salt=salt, person=person, usedforsecurity=usedforsecurity, **tree
        )
    return h


def _blake2_keyring(
    name: str,
    data: Buffer,
    digest_size: int,
    key: KernelKey,
    salt: Buffer,
    person: Buffer,
    tree: dict[str, Any],
    usedforsecurity: bool,
) -> Any:
    """blake2b/blake2s keyed from the kernel keyring: the kernel's keyed blake2b-<bits> or an error under every
    policy (there are no key bytes for the userspace implementation). The other arguments are checked by the
    original constructor (with an empty key), for its errors."""
    STDLIB[name](
        digest_size=digest_size, salt=salt, person=person, usedforsecurity=usedforsecurity, **tree
    )  # fmt: skip
    size = operator.index(digest_size)
    params = {k: bool(v) if k == "last_node" else operator.index(v) for k, v in tree.items()}
    kname = kernel_name(name, size)
    if memoryview(salt).nbytes or memoryview(person).nbytes or params != TREE_DEFAULTS:
        _keyring.unsupported("hash", name, key, f"the kernel's {name} takes no salt, person or tree parameters")
    if kname is None:
        sizes = ", ".join(str(s) for s in _BLAKE2_KERNEL_SIZES.get(name, ())) or "none"
        _keyring.unsupported("hash", name, key, f"the kernel's {name} has digest sizes {sizes} only, not {size}")
    tfm = _keyring.kernel_tfm(key, "hash", kname, "hash", name)
    h = HASH._create(name, size, ALGORITHMS[name].block_size, tfm)
    h.update(data)
    return h


def _blake2_call(name: str, default_size: int, args: Any, kwargs: dict[str, Any]) -> Any:
    data, rest = arguments(STDLIB[name], BLAKE2_DATA, BLAKE2_KEYWORDS, args, kwargs, stacklevel=4)
    opts = {**BLAKE2_DEFAULTS, **rest}
    tree = {k: opts.get(k, v) for k, v in TREE_DEFAULTS.items()}
    size = opts.get("digest_size", default_size)
    return _blake2(name, data, size, opts["key"], opts["salt"], opts["person"], tree, opts["usedforsecurity"])


@as_builtin("kcapi_hashlib")
def blake2b(*args: Any, **kwargs: Any) -> Any:
    """Return a new BLAKE2b hash object computed by the kernel (blake2b-160/256/384/512, keyed by setkey)."""
    return _blake2_call("blake2b", 64, args, kwargs)


@as_builtin("kcapi_hashlib")
def blake2s(*args: Any, **kwargs: Any) -> Any:
    """Return a new BLAKE2s hash object (kernel blake2s-128..256 where the kernel has it)."""
    return _blake2_call("blake2s", 32, args, kwargs)


# hashlib's own signatures (3.14+: data by keyword too, and string=).
blake2b.__wrapped__.__signature__ = blake2_signature("blake2b", 64)  # type: ignore[attr-defined]
blake2s.__wrapped__.__signature__ = blake2_signature("blake2s", 32)  # type: ignore[attr-defined]

blake2b.digest_size = 64  # type: ignore[attr-defined]  # hashlib.blake2b has these class attributes
blake2b.block_size = 128  # type: ignore[attr-defined]
blake2b.MAX_DIGEST_SIZE = 64  # type: ignore[attr-defined]
blake2b.MAX_KEY_SIZE = 64  # type: ignore[attr-defined]
blake2b.SALT_SIZE = 16  # type: ignore[attr-defined]
blake2b.PERSON_SIZE = 16  # type: ignore[attr-defined]
blake2s.digest_size = 32  # type: ignore[attr-defined]
blake2s.block_size = 64  # type: ignore[attr-defined]
blake2s.MAX_DIGEST_SIZE = 32  # type: ignore[attr-defined]
blake2s.MAX_KEY_SIZE = 32  # type: ignore[attr-defined]
blake2s.SALT_SIZE = 8  # type: ignore[attr-defined]
blake2s.PERSON_SIZE = 8  # type: ignore[attr-defined]

CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    name: (blake2b if name == "blake2b" else blake2s if name == "blake2s" else _constructor(name))
    for name in ALGORITHMS
}


def _name_or_its_error(name: Any) -> Optional[str]:
    """The canonical name for `name`, None if hashlib has no such name; hashlib's TypeError if no str."""
    if not isinstance(name, str):
        # hashlib's own error for a name that is no str (it differs between Python versions: "unhashable
        # type", "cannot hash writable memoryview object", "new() argument 'name' must be str, not int"):
        # hashlib.new() with such a name raises before it looks at any data.
        STDLIB_NEW(name)
        raise TypeError("name must be a string")  # pragma: no cover - hashlib.new() refused it above
    return canonical_name(name)


if STRING_ALIAS:  # hashlib.new(name, *args, **kwargs), as the constructors take data= and string=

    @as_builtin("kcapi_hashlib")
    def new(name: str, *args: Any, **kwargs: Any) -> Any:
        """new(name, data=b'') - Return a new hashing object using the named algorithm;
        optionally initialized with data (which must be a bytes-like object)."""
        if "driver" in kwargs:
            return _new_with_driver(name, args, kwargs, "data")
        canon = _name_or_its_error(name)
        if canon is None:
            return _beyond_the_table(name, args, kwargs)
        if not kwargs and len(args) <= 1:
            return CONSTRUCTORS[canon](*args)

        def original(*a: Any, **k: Any) -> Any:  # hashlib.new's own errors (_hashlib.new's, or blake2b's)
            return STDLIB_NEW(name, *a, **k)

        keywords = BLAKE2_KEYWORDS if canon in ("blake2b", "blake2s") else frozenset({"usedforsecurity"})
        data, rest = arguments(original, "data", keywords, args, kwargs)
        return CONSTRUCTORS[canon](data, **rest)

else:

    @as_builtin("kcapi_hashlib")
    def new(name: str, data: Buffer = b"", **kwargs: Any) -> Any:
        """new(name, data=b'', **kwargs) - Return a new hashing object using the named algorithm;
        optionally initialized with data (which must be a bytes-like object)."""
        if "driver" in kwargs:
            return _new_with_driver(name, (data,), kwargs, None)
        canon = _name_or_its_error(name)
        if canon is None:
            return _beyond_the_table(name, (data,), kwargs)
        if not kwargs:
            return CONSTRUCTORS[canon](data)

        def original(*a: Any, **k: Any) -> Any:  # hashlib.new's own errors (it passes data positionally)
            return STDLIB_NEW(name, *a, **k)

        keywords = BLAKE2_KEYWORDS if canon in ("blake2b", "blake2s") else frozenset({"usedforsecurity"})
        data, rest = arguments(original, None, keywords, (data,), kwargs)
        return CONSTRUCTORS[canon](data, **rest)


# --- driver choice: one implementation of an algorithm, by its cra_driver_name --------------------------


class Implementation(NamedTuple):
    """One kernel implementation (driver) of a hash, as implementations() reports it."""

    name: str  # hashlib's name
    kernel: str  # the kernel's cra_name ("sha256", "blake2b-256")
    driver: str  # cra_driver_name: what new(name, driver=...) binds ("sha256-generic")
    module: str  # "kernel" when built in
    priority: int  # a bind by cra_name takes the highest-priority tested one
    selftest: str  # "passed" or "unknown"
    internal: bool  # CRYPTO_ALG_INTERNAL: only a part of other algorithms, never reachable from AF_ALG
    asynchronous: Optional[bool]  # an async (ahash) implementation; None where /proc/crypto says nothing (shash)
    fips_allowed: Optional[bool]  # allowed in FIPS mode; None where the kernel does not say (not in FIPS mode)
    default: bool  # the one a bind by cra_name (new(name) without driver=) gets
    reachable: bool  # AF_ALG can bind it by its driver name in this process
    reason: Optional[str]  # why not, where not reachable


def _drivers_text(kname: str, impls: list[procfs.Implementation]) -> str:
    if not impls:
        return f"/proc/crypto lists no driver for {kname!r}"
    listed = ", ".join(f"{i.driver} (priority {i.priority}{', internal' if i.internal else ''})" for i in impls)
    return f"{kname!r} has the drivers {listed}"


def implementations(name: str, digest_size: Optional[int] = None) -> list[Implementation]:
    """Every kernel implementation of hash `name` (hashlib's name; BLAKE2 with digest_size picks the kernel's
    blake2b-NNN), highest priority first, each with whether AF_ALG can reach it here (it binds each once).

    Raises ValueError for a name hashlib has not, or one the kernel has no AF_ALG hash for."""
    canon = canonical_name(name) if isinstance(name, str) else None
    if canon is None:
        raise ValueError(UNSUPPORTED + str(name))
    kname = kernel_name(canon, digest_size)
    if kname is None:
        raise ValueError(no_kernel_hash(canon, digest_size))
    found = []
    surveyed = drivers.survey("hash", kname)  # binds kname first: its modules are loaded, then listed
    default = procfs.chosen("hash", kname)
    for impl, why in surveyed:
        found.append(
            Implementation(
                canon, kname, impl.driver, impl.module, impl.priority, impl.selftest, impl.internal,
                impl.asynchronous, impl.fips_allowed, default is not None and impl.driver == default.driver,
                why is None, None if why is None else procfs.unreachable(impl, why),
            )
        )  # fmt: skip
    return found


def _driver_tfm(name: str, kname: str, driver: str, key: Optional[bytes]) -> _afalg.Tfm:
    """A tfm bound to `driver`, validated against /proc/crypto: a bind by cra_driver_name picks exactly that
    implementation (crypto/api.c __crypto_alg_lookup: an exact cra_driver_name match ends the search, a
    cra_name match only competes on priority), so the name must be one of kname's drivers. ValueError names
    the driver and kname's drivers; a listed driver AF_ALG cannot bind raises UnsupportedAlgorithm under every
    policy: the fallback cannot compute "that kernel implementation"."""
    impl = procfs.by_driver(driver)
    if impl is None:
        _afalg.probe("hash", kname)  # loads kname's modules
        _afalg.probe("hash", driver)  # and the module named by the driver (MODULE_ALIAS_CRYPTO(driver))
        impl = procfs.by_driver(driver)
    if impl is None or impl.name != kname or impl.type not in procfs.PROC_TYPES["hash"]:
        if impl is None:
            lead = f"no kernel driver {driver!r}"
        else:
            lead = f"driver {driver!r} implements {impl.type} {impl.name!r}, not {kname!r},"
        raise ValueError(f"{lead} for {name}: {_drivers_text(kname, procfs.of('hash', kname))}")
    try:
        if impl.internal:
            raise _afalg.AlgUnavailable(errno.ENOENT, "bind", "hash", driver)
        return _afalg.keyed_tfm("hash", driver, key) if key else _afalg.tfm("hash", driver)
    except _afalg.AlgUnavailable as e:
        if e.transient:
            raise
        reason = procfs.unreachable(impl, e)
        raise _policy.UnsupportedAlgorithm(f"unsupported hash type {name} (driver {driver!r})", reason) from e


def _new_with_driver(name: Any, args: Any, kwargs: dict[str, Any], first: Optional[str]) -> Any:
    """new(name, data, driver=...): the hash computed by that kernel implementation (see _driver_tfm)."""
    kwargs = dict(kwargs)
    driver = kwargs.pop("driver")
    if not isinstance(driver, str):
        raise TypeError(f"new() argument 'driver' must be str, not {type(driver).__name__}")
    canon = _name_or_its_error(name)
    if canon is None:
        raise ValueError(UNSUPPORTED + name)

    def original(*a: Any, **k: Any) -> Any:
        return STDLIB_NEW(name, *a, **k)

    blake2 = canon in ("blake2b", "blake2s")
    keywords = BLAKE2_KEYWORDS if blake2 else frozenset({"usedforsecurity"})
    data, rest = arguments(original, first, keywords, args, kwargs)
    alg = ALGORITHMS[canon]
    size = alg.digest_size
    key: Optional[bytes] = None
    if blake2:
        extra = {k for k, v in rest.items() if k not in ("digest_size", "key", "usedforsecurity")
                 and v != {**BLAKE2_DEFAULTS, **TREE_DEFAULTS}.get(k)}  # fmt: skip
        if extra:
            raise ValueError(
                f"driver= takes digest_size and key only: the kernel's {canon} has no {', '.join(sorted(extra))}"
            )
        size = operator.index(rest.get("digest_size", alg.digest_size))
        key = byte_view(rest.get("key", b"")).tobytes() or None
    kname = kernel_name(canon, size)
    if kname is None:
        raise ValueError(no_kernel_hash(canon, size if blake2 else None))
    h = HASH._create(canon, size, alg.block_size, _driver_tfm(canon, kname, driver, key))
    h.update(data)
    return h


def _beyond_the_table(name: str, args: Any, kwargs: dict[str, Any]) -> Any:
    """new() for a name hashlib accepts (through OpenSSL: "md5-sha1", "mdc2", ...) that kcapi_hashlib has no
    kernel algorithm for: the policy decides (strict: hashlib's "unsupported hash type NAME", with the reason).
    A name hashlib refuses too is refused with its error."""
    try:
        STDLIB_NEW(name)  # no data: only whether the original accepts the name
    except ValueError:
        raise ValueError(UNSUPPORTED + name) from None
    _policy.unavailable("hash", name, f"kcapi_hashlib has no kernel algorithm for {name!r} (only OpenSSL has it)")
    return STDLIB_NEW(name, *args, **kwargs)


# --- availability ---------------------------------------------------------------------------------------

_available: Optional[frozenset[str]] = None


def algorithms_available() -> frozenset[str]:
    """hashlib names whose kernel algorithm binds in this process (probed once, cached)."""
    global _available
    if _available is None:
        _available = frozenset(
            name for name, alg in ALGORITHMS.items() if alg.kernel and _afalg.probe("hash", alg.kernel) is None
        )
    return _available


def algorithm_names(name: str) -> set[str]:
    """kcapi_hashlib.algorithms_available (name "algorithms_available") or .algorithms_guaranteed (any other
    name): a new set on each look, as hashlib's (the package's __getattr__ and install()'s hashlib.__getattr__)."""
    available = set(algorithms_available())
    return available if name == "algorithms_available" else available & set(GUARANTEED)
