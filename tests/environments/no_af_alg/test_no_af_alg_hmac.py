"""HMAC, CMAC and the KDFs where socket(AF_ALG) fails with a real EAFNOSUPPORT (run as test_no_af_alg.py says).

Strict (the default) raises UnsupportedAlgorithm (a ValueError, hashlib's text) carrying the kernel's errno;
fallback computes with the standard library (PyCryptodome's construction for CMAC), counted and warned about.
"""

from __future__ import annotations

import errno
import hashlib
import hmac as std_hmac
import warnings
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC as PyCMAC
from Crypto.Hash import SHA256 as PySHA256
from Crypto.Protocol import KDF as PyKDF

import kcapi_hashlib
from kcapi_hashlib import hmac
from kcapi_hashlib.Hash import CMAC, HMAC, SHA256
from kcapi_hashlib.Protocol import KDF

CALLS: dict[str, tuple[Callable[[], Any], Callable[[], Any], str]] = {
    "hmac.new": (
        lambda: hmac.new(b"k", b"m", "sha256").digest(),
        lambda: std_hmac.new(b"k", b"m", "sha256").digest(),
        "hash type sha256",
    ),
    "hmac.digest": (
        lambda: hmac.digest(b"k", b"m", "sha256"),
        lambda: std_hmac.digest(b"k", b"m", "sha256"),
        "hash type sha256",
    ),
    "pbkdf2_hmac": (
        lambda: kcapi_hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 3),
        lambda: hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 3),
        "hash type sha256",
    ),
    "Hash.HMAC": (
        lambda: HMAC.new(b"k", b"m", SHA256).digest(),
        lambda: std_hmac.new(b"k", b"m", "sha256").digest(),
        "hash type sha256",
    ),
    "Hash.CMAC": (
        lambda: CMAC.new(bytes(16), b"m", AES).digest(),
        lambda: PyCMAC.new(bytes(16), b"m", AES).digest(),
        "cmac type cmac(AES)",
    ),
    "KDF.PBKDF2": (
        lambda: KDF.PBKDF2(b"pw", b"salt", 40, 3, hmac_hash_module=SHA256),
        lambda: PyKDF.PBKDF2(b"pw", b"salt", 40, 3, hmac_hash_module=PySHA256),
        "hash type sha256",
    ),
    "KDF.HKDF": (
        lambda: KDF.HKDF(b"m", 40, b"s", SHA256),
        lambda: PyKDF.HKDF(b"m", 40, b"s", PySHA256),
        "hash type sha256",
    ),
}


@pytest.mark.parametrize("what", list(CALLS))
def test_strict_raises_with_eafnosupport(what: str) -> None:
    ours, _, message = CALLS[what]
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm) as info:
        ours()
    assert str(info.value) == f"unsupported {message}" and isinstance(info.value, ValueError)
    assert info.value.errno == errno.EAFNOSUPPORT


@pytest.mark.parametrize("what", list(CALLS))
def test_fallback_computes_in_userspace_counted(what: str) -> None:
    ours, reference, _ = CALLS[what]
    kcapi_hashlib.set_policy("fallback")
    kcapi_hashlib.reset_fallback_counts()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ours() == reference()
    assert any(issubclass(w.category, kcapi_hashlib.KernelFallbackWarning) for w in caught)
    assert sum(kcapi_hashlib.fallback_counts().values()) >= 1
