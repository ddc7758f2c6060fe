"""kcapi_hashlib: hashlib, hmac and PyCryptodome's Crypto.* APIs, computed by the Linux kernel (AF_ALG).

    import kcapi_hashlib as hashlib
    hashlib.sha256(b"abc").hexdigest()

Every digest is computed by the kernel's crypto API. Where the kernel cannot serve an algorithm the policy
decides: "strict" (the default) raises ValueError('unsupported hash type NAME') carrying the kernel's
reason; "fallback" uses the standard library, counted (fallback_counts()) and warned about once per
algorithm (KernelFallbackWarning). See set_policy() and the KCAPI_HASHLIB_POLICY environment variable.
"""

from __future__ import annotations

from typing import Any

from ._afalg import AlgUnavailable, KernelError
from ._gates import scrypt
from ._hashes import CONSTRUCTORS as _CONSTRUCTORS
from ._hashes import GUARANTEED as _GUARANTEED
from ._hashes import HASH, blake2b, blake2s, file_digest, implementations, new
from ._hashes import algorithms_available as _algorithms_available
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

__version__ = "0.1.0"

md5 = _CONSTRUCTORS["md5"]
sha1 = _CONSTRUCTORS["sha1"]
sha224 = _CONSTRUCTORS["sha224"]
sha256 = _CONSTRUCTORS["sha256"]
sha384 = _CONSTRUCTORS["sha384"]
sha512 = _CONSTRUCTORS["sha512"]
sha3_224 = _CONSTRUCTORS["sha3_224"]
sha3_256 = _CONSTRUCTORS["sha3_256"]
sha3_384 = _CONSTRUCTORS["sha3_384"]
sha3_512 = _CONSTRUCTORS["sha3_512"]
shake_128 = _CONSTRUCTORS["shake_128"]
shake_256 = _CONSTRUCTORS["shake_256"]


def __getattr__(name: str) -> Any:
    # Probed lazily: importing the package makes no syscall; the first look binds each algorithm once.
    if name == "algorithms_available":
        return set(_algorithms_available())
    if name == "algorithms_guaranteed":
        return set(_algorithms_available()) & set(_GUARANTEED)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
