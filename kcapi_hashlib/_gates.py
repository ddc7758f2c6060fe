"""Strict mode made honest: the entry points of the replaced modules that kcapi_hashlib does not serve from the
kernel go through the policy instead of computing in userspace unseen.

After install(), `Crypto.Cipher.ARC2.new`, `Crypto.Hash.SHAKE128.new`, `Crypto.Protocol.KDF.scrypt`, `hashlib.scrypt`
... are gates: under the strict policy they raise UnsupportedAlgorithm ("unsupported cipher type ARC2", a
ValueError) naming the algorithm and why; under fallback they call the original (PyCryptodome's, the stdlib's),
counted in fallback_counts() and accounting() and warned about once. There is no third way.
"""

from __future__ import annotations

import functools
import hashlib as _stdlib_hashlib
from types import ModuleType
from typing import Any, Callable, Optional

from . import _policy
from ._callable import as_builtin, make_builtin

_NOT_WIRED = "the kernel has {kernel}, but kcapi_hashlib does not serve {name} from it: PyCryptodome computes it"
_NO_KERNEL = "the kernel has no AF_ALG {what} for {name}: only PyCryptodome computes it"


def _not_wired(name: str, kernel: str) -> str:
    return _NOT_WIRED.format(kernel=kernel, name=name)


def _no_kernel(name: str, what: str = "algorithm") -> str:
    return _NO_KERNEL.format(what=what, name=name)


# (module, kind, algorithm, reason, the attributes gated: None = every public function the module defines).
# ARC4, DES, Blowfish and CAST are not here: kcapi_hashlib.Cipher serves them from the kernel (ecb(arc4), des,
# blowfish, cast5), with the policy where a kernel lacks one (install.REPLACEMENTS).
GATES: list[tuple[str, str, str, str, Optional[tuple[str, ...]]]] = [
    ("Crypto.Cipher.ARC2", "cipher", "ARC2", _no_kernel("ARC2 (RC2)", "skcipher"), None),
    ("Crypto.Cipher.Salsa20", "cipher", "Salsa20", _no_kernel("Salsa20", "skcipher"), None),
    ("Crypto.Hash.MD2", "hash", "MD2", _no_kernel("MD2", "hash"), None),
    ("Crypto.Hash.BLAKE2s", "hash", "BLAKE2s", _no_kernel("BLAKE2s with PyCryptodome's parameters", "hash"), None),
    ("Crypto.Hash.SHAKE128", "hash", "SHAKE128", _no_kernel("SHAKE128 (an XOF)", "hash"), None),
    ("Crypto.Hash.SHAKE256", "hash", "SHAKE256", _no_kernel("SHAKE256 (an XOF)", "hash"), None),
    ("Crypto.Hash.keccak", "hash", "keccak", _no_kernel("Keccak (pre-SHA-3 padding)", "hash"), None),
    ("Crypto.Hash.cSHAKE128", "hash", "cSHAKE128", _no_kernel("cSHAKE128", "hash"), None),
    ("Crypto.Hash.cSHAKE256", "hash", "cSHAKE256", _no_kernel("cSHAKE256", "hash"), None),
    ("Crypto.Hash.KMAC128", "hash", "KMAC128", _no_kernel("KMAC128", "hash"), None),
    ("Crypto.Hash.KMAC256", "hash", "KMAC256", _no_kernel("KMAC256", "hash"), None),
    ("Crypto.Hash.TupleHash128", "hash", "TupleHash128", _no_kernel("TupleHash128", "hash"), None),
    ("Crypto.Hash.TupleHash256", "hash", "TupleHash256", _no_kernel("TupleHash256", "hash"), None),
    ("Crypto.Hash.KangarooTwelve", "hash", "KangarooTwelve", _no_kernel("KangarooTwelve", "hash"), None),
    ("Crypto.Hash.TurboSHAKE128", "hash", "TurboSHAKE128", _no_kernel("TurboSHAKE128", "hash"), None),
    ("Crypto.Hash.TurboSHAKE256", "hash", "TurboSHAKE256", _no_kernel("TurboSHAKE256", "hash"), None),
    (
        "Crypto.Hash.Poly1305",
        "hash",
        "Poly1305",
        _not_wired("Crypto.Hash.Poly1305", "poly1305 (not on every kernel)"),
        None,
    ),
    ("Crypto.Protocol.KDF", "kdf", "scrypt", _no_kernel("scrypt", "KDF"), ("scrypt",)),
    ("Crypto.Protocol.KDF", "kdf", "bcrypt", _no_kernel("bcrypt (EksBlowfish)", "KDF"), ("bcrypt", "bcrypt_check")),
    ("Crypto.Protocol.KDF", "kdf", "PBKDF1", _not_wired("PBKDF1", "its hashes"), ("PBKDF1",)),
]


def gate(original: Callable[..., Any], kind: str, name: str, reason: str) -> Callable[..., Any]:
    """`original` behind the policy: strict raises UnsupportedAlgorithm, fallback calls it (counted). Keeps its
    name, module, docs and signature; a builtin-like callable (does not bind as a method)."""

    @functools.wraps(original)
    def gated(*args: Any, **kwargs: Any) -> Any:
        _policy.unavailable(kind, name, reason)
        return original(*args, **kwargs)

    gated.__kcapi_gate__ = (kind, name)  # type: ignore[attr-defined]
    return make_builtin(gated, getattr(original, "__module__", None), getattr(original, "__name__", None))


def is_gate(obj: object) -> bool:
    return hasattr(getattr(obj, "__wrapped__", None), "__kcapi_gate__")


def gates_for(
    module: ModuleType, attrs: Optional[tuple[str, ...]], kind: str, name: str, reason: str
) -> list[tuple[str, Any]]:
    """(attribute, gate) for what install() puts into `module`."""
    out: list[tuple[str, Any]] = []
    names = attrs if attrs is not None else [n for n in vars(module) if not n.startswith("_")]
    for attr in names:
        value = getattr(module, attr, None)
        if value is None or isinstance(value, type) or not callable(value) or is_gate(value):
            continue
        if attrs is None and getattr(value, "__module__", None) != module.__name__:
            continue  # imported helpers (tobytes, ...), not this module's entry points
        out.append((attr, gate(value, kind, name, reason)))
    return out


_SCRYPT_REASON = _no_kernel("scrypt", "KDF")
# The stdlib's, captured at import: install() later puts ours into hashlib (None where OpenSSL lacks scrypt).
_STDLIB_SCRYPT: Optional[Callable[..., bytes]] = getattr(_stdlib_hashlib, "scrypt", None)


@as_builtin("kcapi_hashlib")
def scrypt(password: Any, *, salt: Any, n: Any, r: Any, p: Any, maxmem: int = 0, dklen: int = 64) -> bytes:
    """scrypt password-based key derivation function.

    The kernel has no scrypt: the policy decides (strict raises UnsupportedAlgorithm; fallback computes it with
    the standard library's, counted)."""
    _policy.unavailable("kdf", "scrypt", _SCRYPT_REASON)
    if _STDLIB_SCRYPT is None:
        raise _policy.UnsupportedAlgorithm("unsupported kdf type scrypt", "this Python's OpenSSL has no scrypt")
    return _STDLIB_SCRYPT(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


__all__ = ["GATES", "gate", "gates_for", "is_gate", "scrypt"]
