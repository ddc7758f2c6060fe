"""kcapi_hashlib: hashlib, hmac and PyCryptodome's Crypto.* APIs, computed by the Linux kernel (AF_ALG).

    import kcapi_hashlib as hashlib
    hashlib.sha256(b"abc").hexdigest()

Every digest is computed by the kernel's crypto API. Where the kernel cannot serve an algorithm the policy
decides: "strict" (the default) raises ValueError('unsupported hash type NAME') carrying the kernel's
reason; "fallback" uses the standard library, counted (fallback_counts()) and warned about once per
algorithm (KernelFallbackWarning). See set_policy() and the KCAPI_HASHLIB_POLICY environment variable.

Importing the package loads none of its modules (and no standard library module): each public name is loaded
from its module on first use (PEP 562 module __getattr__), so `import kcapi_hashlib`, the pytest plugin and the
start-up hook cost nothing until something is used. Binding a kernel algorithm waits for its first use too.
"""

# No `from __future__` and no typing at run time: either would be a module loaded by `import kcapi_hashlib`.
TYPE_CHECKING = False

# The one version source: setuptools reads it statically (pyproject.toml: dynamic version, attr), `kcapi-hashlib
# --version` and kcapi-hasher's -v print it.
__version__ = "0.1.0"

if TYPE_CHECKING:  # what the lazy names are, for type checkers (never imported at run time from here)
    from typing import Any

    from ._afalg import AlgUnavailable, KernelError
    from ._file_digest import file_digest
    from ._gates import scrypt
    from ._hashes import HASH, blake2b, blake2s, implementations, new
    from ._install import install, installed, patched, uninstall
    from ._kdf import pbkdf2_hmac
    from ._policy import (
        KernelFallbackWarning,
        UnsupportedAlgorithm,
        fallback_counts,
        get_policy,
        reset_fallback_counts,
        set_policy,
    )
    from ._report import accounting, reset_accounting
    from .keyring import KernelKey, KeyringError

    md5: Any
    sha1: Any
    sha224: Any
    sha256: Any
    sha384: Any
    sha512: Any
    sha3_224: Any
    sha3_256: Any
    sha3_384: Any
    sha3_512: Any
    shake_128: Any
    shake_256: Any
    algorithms_available: set[str]
    algorithms_guaranteed: set[str]

# public name -> the module it lives in (relative to this package)
_LAZY: "dict[str, str]" = {
    "AlgUnavailable": "_afalg",
    "KernelError": "_afalg",
    "scrypt": "_gates",
    "HASH": "_hashes",
    "blake2b": "_hashes",
    "blake2s": "_hashes",
    "file_digest": "_file_digest",
    "implementations": "_hashes",
    "new": "_hashes",
    "install": "_install",
    "installed": "_install",
    "patched": "_install",
    "uninstall": "_install",
    "pbkdf2_hmac": "_kdf",
    "KernelFallbackWarning": "_policy",
    "UnsupportedAlgorithm": "_policy",
    "fallback_counts": "_policy",
    "get_policy": "_policy",
    "reset_fallback_counts": "_policy",
    "set_policy": "_policy",
    "accounting": "_report",
    "reset_accounting": "_report",
    "KernelKey": "keyring",
    "KeyringError": "keyring",
}
# hashlib's named constructors: _hashes.CONSTRUCTORS[name]
_CONSTRUCTOR_NAMES = (
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512",
    "sha3_224", "sha3_256", "sha3_384", "sha3_512", "shake_128", "shake_256",
)  # fmt: skip


# Submodules the package used to import eagerly, reachable as attributes of the package as before.
_SUBMODULES = frozenset({"hmac", "keyring", "Cipher", "Hash", "Protocol", "Random", "Util"})


def __getattr__(name: str) -> "Any":
    # Called only for names not (yet) in this module's namespace. The value is stored there, so each name is looked
    # up here once; two threads racing store the same object (the import system's per-module lock serialises the
    # import itself), so the namespace needs no lock of ours.
    from importlib import import_module

    if name in _LAZY:
        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    elif name in _CONSTRUCTOR_NAMES:
        value = import_module(f"{__name__}._hashes").CONSTRUCTORS[name]
    elif name in ("algorithms_available", "algorithms_guaranteed"):
        # Probed on each look (not stored): the first look binds each algorithm once.
        return import_module(f"{__name__}._hashes").algorithm_names(name)
    elif name in _SUBMODULES:
        # `import kcapi_hashlib; kcapi_hashlib.hmac.new(...)` worked when the package imported these eagerly.
        value = import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(__all__))


__all__ = [
    # hashlib's surface
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b", "blake2s",
    "sha3_224", "sha3_256", "sha3_384", "sha3_512", "shake_128", "shake_256",
    "new", "algorithms_guaranteed", "algorithms_available", "file_digest", "pbkdf2_hmac", "scrypt",
    # kcapi_hashlib's own
    "HASH", "AlgUnavailable", "KernelError", "KernelFallbackWarning", "UnsupportedAlgorithm",
    "set_policy", "get_policy", "fallback_counts", "reset_fallback_counts",
    "install", "uninstall", "installed", "patched", "accounting", "reset_accounting", "implementations",
    "KernelKey", "KeyringError",
]  # fmt: skip
