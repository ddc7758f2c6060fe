"""Strict mode is honest. After install(), every entry point of the replaced modules (hashlib, hmac,
Crypto.Hash.*, Crypto.Cipher.*, Crypto.Protocol.KDF, Crypto.Random; Cryptodome.* likewise) is either served by
the kernel or goes through the policy: strict raises UnsupportedAlgorithm naming the algorithm and the reason;
fallback computes it with the original, counted (ARC4, DES, Blowfish, CAST and MD4 are kernel-served: see
test_cipher_install.py, tests/parity/test_legacy_ciphers.py). Before this, they and SHAKE/scrypt/... computed in
userspace under strict with no error and no count."""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Callable

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg, _gates
from kcapi_hashlib._callable import builtin

Crypto = pytest.importorskip("Crypto", reason="PyCryptodome is a test requirement (the `test` extra)")

STDLIB_SCRYPT = hashlib.scrypt

# Crypto.Cipher modules that are not symmetric ciphers of their own: RSA encryption schemes (the kernel's akcipher
# has no AF_ALG interface). Their hashing goes through Crypto.Hash, which is ours.
NOT_REPLACED = {"Crypto.Cipher.PKCS1_OAEP", "Crypto.Cipher.PKCS1_v1_5", "Crypto.Cipher.oaep"}
# Entry points that compute nothing cryptographic (key formatting): no kernel call and no policy needed.
NOT_CRYPTO = {"Crypto.Cipher.DES3.adjust_key_parity"}


@pytest.fixture
def installed() -> Iterator[None]:
    previous = kcapi_hashlib.get_policy()
    kcapi_hashlib.install()
    kcapi_hashlib.reset_fallback_counts()
    try:
        yield
    finally:
        kcapi_hashlib.uninstall()
        kcapi_hashlib.set_policy(previous)
        kcapi_hashlib.reset_fallback_counts()


def _public_modules(package: str) -> list[ModuleType]:
    pkg = importlib.import_module(package)
    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and f"{package}.{info.name}" not in NOT_REPLACED:
            mods.append(importlib.import_module(f"{package}.{info.name}"))
    return mods


def _entry_points(mod: ModuleType) -> list[tuple[str, Any]]:
    out = []
    for name, value in vars(mod).items():
        if name.startswith("_") or isinstance(value, type) or not callable(value) or isinstance(value, ModuleType):
            continue
        module = getattr(value, "__module__", "") or ""
        if module == mod.__name__ or module.startswith("kcapi_hashlib"):
            out.append((name, value))
    return out


def test_no_third_way_every_entry_point_is_kernel_or_policy(installed: None) -> None:
    unseen = []
    for package in ("Crypto.Hash", "Crypto.Cipher"):
        for mod in _public_modules(package):
            for name, value in _entry_points(mod):
                ours = isinstance(value, builtin) and (value.__wrapped__.__module__ or "").startswith("kcapi_hashlib")
                if not (ours or _gates.is_gate(value) or f"{mod.__name__}.{name}" in NOT_CRYPTO):
                    unseen.append(f"{mod.__name__}.{name}")
    kdf = importlib.import_module("Crypto.Protocol.KDF")
    for name in ("PBKDF1", "PBKDF2", "HKDF", "SP800_108_Counter", "scrypt", "bcrypt", "bcrypt_check"):
        value = getattr(kdf, name)
        if not (_gates.is_gate(value) or value.__module__.startswith("kcapi_hashlib")):
            unseen.append(f"Crypto.Protocol.KDF.{name}")
    assert hashlib.scrypt is kcapi_hashlib.scrypt
    assert unseen == [], f"computed in userspace with no policy: {unseen}"


def _calls() -> list[tuple[str, str, Callable[[], Any]]]:
    """(algorithm, module, one call) for each gate, run through Crypto.* as a program would after install()."""

    def m(name: str) -> Any:
        return importlib.import_module(name)

    key16 = bytes(range(16))
    return [
        ("ARC2", "Crypto.Cipher.ARC2", lambda: m("Crypto.Cipher.ARC2").new(key16, 1).encrypt(b"8 bytes!")),
        ("Salsa20", "Crypto.Cipher.Salsa20", lambda: m("Crypto.Cipher.Salsa20").new(key16, b"n" * 8).encrypt(b"x")),
        ("BLAKE2s", "Crypto.Hash.BLAKE2s", lambda: m("Crypto.Hash.BLAKE2s").new(data=b"abc").digest()),
        ("SHAKE128", "Crypto.Hash.SHAKE128", lambda: m("Crypto.Hash.SHAKE128").new(b"abc").read(16)),
        ("SHAKE256", "Crypto.Hash.SHAKE256", lambda: m("Crypto.Hash.SHAKE256").new(b"abc").read(16)),
        ("keccak", "Crypto.Hash.keccak", lambda: m("Crypto.Hash.keccak").new(data=b"abc", digest_bits=256).digest()),
        ("scrypt", "Crypto.Protocol.KDF", lambda: m("Crypto.Protocol.KDF").scrypt(b"pw", b"salt", 16, 16, 1, 1)),
        ("bcrypt", "Crypto.Protocol.KDF", lambda: m("Crypto.Protocol.KDF").bcrypt(b"pw", 4, b"s" * 16)),
        ("scrypt", "hashlib", lambda: hashlib.scrypt(b"pw", salt=b"salt", n=16, r=1, p=1)),
    ]


CALLS = _calls()


@pytest.mark.parametrize("algorithm,module,call", CALLS, ids=[f"{c[1]}:{c[0]}" for c in CALLS])
def test_strict_raises_naming_the_algorithm(installed: None, algorithm: str, module: str, call: Any) -> None:
    kcapi_hashlib.set_policy("strict")
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm) as info:
        call()
    assert str(info.value).startswith("unsupported ") and str(info.value).endswith(f" type {algorithm}")
    assert "kernel" in str(info.value.reason)  # the reason says what the kernel has or lacks
    assert kcapi_hashlib.fallback_counts() == {}


@pytest.mark.parametrize("algorithm,module,call", CALLS, ids=[f"{c[1]}:{c[0]}" for c in CALLS])
def test_fallback_computes_what_the_original_computes_and_counts(algorithm: str, module: str, call: Any) -> None:
    expected = call()  # not installed: PyCryptodome / the stdlib itself
    previous = kcapi_hashlib.set_policy("fallback")
    kcapi_hashlib.reset_fallback_counts()
    try:
        with kcapi_hashlib.patched(), warnings.catch_warnings():
            warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
            got = call()
            counts = kcapi_hashlib.fallback_counts()
    finally:
        kcapi_hashlib.set_policy(previous)
        kcapi_hashlib.reset_fallback_counts()
    assert got == expected
    assert counts.get(algorithm, 0) >= 1, counts


def test_uninstall_restores_the_originals() -> None:
    arc2 = importlib.import_module("Crypto.Cipher.ARC2")
    arc4 = importlib.import_module("Crypto.Cipher.ARC4")
    kdf = importlib.import_module("Crypto.Protocol.KDF")
    before = (arc2.new, arc4.new, kdf.scrypt, kdf.bcrypt_check, hashlib.scrypt)
    with kcapi_hashlib.patched():
        assert _gates.is_gate(arc2.new) and _gates.is_gate(kdf.bcrypt_check)
        assert arc4.new is kcapi_hashlib.Cipher.ARC4.new  # kernel-served (test_cipher_install.py)
    assert (arc2.new, arc4.new, kdf.scrypt, kdf.bcrypt_check, hashlib.scrypt) == before
    assert hashlib.scrypt is STDLIB_SCRYPT


def test_md4_is_served_by_the_kernel_after_install() -> None:
    md4 = importlib.import_module("Crypto.Hash.MD4")
    expected = md4.new(b"abc").hexdigest()
    before = _afalg.kernel_operations()
    with kcapi_hashlib.patched():
        h = md4.new(b"ab")
        h.update(b"c")
        assert (h.hexdigest(), h.oid, h.digest_size, h.block_size) == (expected, md4.MD4Hash.oid, 16, 64)
        assert h.copy().digest() == bytes.fromhex(expected)
    assert _afalg.kernel_operations() > before
