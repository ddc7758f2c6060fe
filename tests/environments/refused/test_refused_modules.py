"""Run in a VM where sha3-256 and algif_aead are refused, as a distribution's module blacklist does:
    python -m kcapi_hashlib vm --refuse crypto-sha3-256 --refuse algif_aead -- \\
        env KCAPI_HASHLIB_SUITE=refused python -m pytest tests/environments/refused
The kernel answers bind() with a real ENOENT; strict raises with that reason, fallback serves and counts."""

from __future__ import annotations

import errno
import hashlib
import warnings

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg


def test_refused_hash_is_enoent_and_others_still_bind() -> None:
    why = _afalg.probe("hash", "sha3-256")
    assert why is not None and why.errno == errno.ENOENT and why.step == "bind"
    assert "ENOENT" in str(why) and "refused/blacklisted" in str(why)
    assert "sha3_256" not in kcapi_hashlib.algorithms_available
    assert "sha256" in kcapi_hashlib.algorithms_available
    assert kcapi_hashlib.sha256(b"abc").digest() == hashlib.sha256(b"abc").digest()


def test_strict_raises_with_the_kernel_reason() -> None:
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.sha3_256(b"abc")
    assert str(info.value) == "unsupported hash type sha3_256"
    assert isinstance(info.value, kcapi_hashlib.UnsupportedAlgorithm)
    assert info.value.errno == errno.ENOENT
    assert isinstance(info.value.__cause__, kcapi_hashlib.AlgUnavailable)
    with pytest.raises(ValueError, match="unsupported hash type sha3_256"):
        kcapi_hashlib.new("sha3_256")


def test_fallback_serves_the_refused_algorithm_from_the_stdlib() -> None:
    kcapi_hashlib.reset_fallback_counts()
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = kcapi_hashlib.sha3_256(b"abc")
    assert h.digest() == hashlib.sha3_256(b"abc").digest()
    assert not isinstance(h, kcapi_hashlib.HASH)
    assert kcapi_hashlib.fallback_counts() == {"sha3_256": 1}
    assert [w.category for w in caught] == [kcapi_hashlib.KernelFallbackWarning]
    assert "ENOENT" in str(caught[0].message)


def test_refused_algif_type_is_enoent() -> None:
    why = _afalg.probe("aead", "gcm(aes)")
    assert why is not None and why.errno == errno.ENOENT
