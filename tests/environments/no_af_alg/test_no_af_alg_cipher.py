"""Ciphers and Random where socket(AF_ALG) fails with a real EAFNOSUPPORT (run as test_no_af_alg.py says).

Strict (the default) raises UnsupportedAlgorithm (a ValueError) carrying the kernel's reason; fallback builds
PyCryptodome's objects / reads os.urandom, counted and warned about once."""

from __future__ import annotations

import errno
import warnings

import pytest
from Crypto.Cipher import AES as RefAES

import kcapi_hashlib
from kcapi_hashlib import Random
from kcapi_hashlib.Cipher import AES, DES3, ChaCha20

KEY = bytes(range(16))


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda: AES.new(KEY, AES.MODE_CBC, bytes(16)), "AES-CBC"),
        (lambda: AES.new(KEY, AES.MODE_CTR, nonce=bytes(8)), "AES-CTR"),
        (lambda: AES.new(KEY, AES.MODE_ECB), "AES-ECB"),
        (lambda: AES.new(bytes(range(32)), AES.MODE_XTS, tweak=bytes(16)), "AES-XTS"),
        (lambda: DES3.new(bytes(range(24)), DES3.MODE_CBC, bytes(8)), "DES3-CBC"),
        (lambda: ChaCha20.new(key=KEY * 2, nonce=bytes(12)), "ChaCha20"),
    ],
)
def test_strict_raises_with_eafnosupport(make: object, what: str) -> None:
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm) as info:
        make()  # type: ignore[operator]
    assert str(info.value) == f"unsupported cipher type {what}"
    assert isinstance(info.value, ValueError)
    assert info.value.errno == errno.EAFNOSUPPORT


def test_strict_random_raises() -> None:
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="unsupported rng type stdrng") as info:
        Random.get_random_bytes(16)
    assert info.value.errno == errno.EAFNOSUPPORT


def test_fallback_serves_pycryptodome_and_urandom() -> None:
    kcapi_hashlib.reset_fallback_counts()
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = AES.new(KEY, AES.MODE_CBC, bytes(16))
        c2 = AES.new(KEY, AES.MODE_CBC, iv=bytes(16))
        r = Random.get_random_bytes(20)
    assert type(c).__module__ == "Crypto.Cipher._mode_cbc"
    assert c.encrypt(bytes(32)) == RefAES.new(KEY, RefAES.MODE_CBC, bytes(16)).encrypt(bytes(32))
    assert c2.iv == bytes(16)
    assert len(r) == 20
    assert kcapi_hashlib.fallback_counts() == {"AES-CBC": 2, "stdrng": 1}
    assert {w.category for w in caught} == {kcapi_hashlib.KernelFallbackWarning}


def test_fallback_has_no_xts() -> None:
    kcapi_hashlib.set_policy("fallback")
    with (
        pytest.warns(kcapi_hashlib.KernelFallbackWarning),
        pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="unsupported cipher type AES-XTS") as info,
    ):
        AES.new(bytes(range(32)), AES.MODE_XTS_UNITS, tweak=1)
    assert "PyCryptodome has no such mode" in str(info.value.reason)
