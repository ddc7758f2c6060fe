"""Run on a kernel booted in FIPS mode (fips=1; Debian's amd64 kernels have CONFIG_CRYPTO_FIPS, 7.3's does not):
    python -m kcapi_hashlib vm --kernel 6.12-amd64 --fips -- \\
        env KCAPI_HASHLIB_SUITE=fips python -m pytest tests/environments/fips
In FIPS mode the kernel lists every algorithm but lets a lookup find only the FIPS-allowed ones (crypto/testmgr.c:
alg_test marks the others CRYPTO_ALG_FIPS_INTERNAL, crypto/api.c: crypto_alg_lookup masks those out; /proc/crypto
says "fips: no"), so AF_ALG's bind() answers ENOENT for them. Each of those must be refused naming FIPS mode under
strict, computed in userspace and counted under fallback; every allowed one must be kernel-served and correct."""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import subprocess
import sys
import warnings

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg, _algorithms, hmac
from kcapi_hashlib._afalg import procfs

DATA = b"The quick brown fox jumps over the lazy dog"
KEY = b"k" * 32


def _kernel_hashes() -> list[str]:
    return [a.name for a in _algorithms.ROWS if a.kernel is not None and procfs.of("hash", a.kernel)]


def _allowed(name: str) -> bool:
    """Does the kernel allow `name` in FIPS mode: any reachable implementation marked fips: yes."""
    return any(i.fips_allowed and i.reachable for i in kcapi_hashlib.implementations(name))


def test_the_kernel_is_in_fips_mode() -> None:
    assert procfs.fips_enabled() is True, "this suite needs a kernel booted with fips=1 (vm --fips)"
    with open(procfs.FIPS_ENABLED) as f:
        assert f.read().strip() == "1"


@pytest.mark.parametrize("name", _kernel_hashes())
def test_each_hash_is_served_if_fips_allowed_and_refused_naming_fips_mode_if_not(name: str) -> None:
    implementations = kcapi_hashlib.implementations(name)
    assert implementations, f"{name}: /proc/crypto lists it, implementations() must too"
    assert all(i.fips_allowed is not None for i in implementations), "in FIPS mode /proc/crypto has a fips line"
    if _allowed(name):
        h = kcapi_hashlib.new(name, DATA)
        assert isinstance(h, kcapi_hashlib.HASH), f"{name} is FIPS-allowed here: the kernel must compute it"
        assert h.digest() == hashlib.new(name, DATA).digest()
        return
    assert all(not i.reachable for i in implementations), implementations
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm) as info:
        kcapi_hashlib.new(name, DATA)
    assert str(info.value) == f"unsupported hash type {name}"
    assert "FIPS mode" in str(info.value.reason), info.value.reason


def test_md5_is_refused_and_fallback_computes_it_in_userspace_counted() -> None:
    why = _afalg.probe("hash", "md5")
    assert why is not None and "FIPS mode" in str(why), why
    kcapi_hashlib.reset_fallback_counts()
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = kcapi_hashlib.md5(DATA)
    assert h.digest() == hashlib.md5(DATA).digest()
    assert not isinstance(h, kcapi_hashlib.HASH)
    assert kcapi_hashlib.fallback_counts() == {"md5": 1}
    assert [w.category for w in caught] == [kcapi_hashlib.KernelFallbackWarning]
    assert "FIPS mode" in str(caught[0].message)


def test_hmac_over_allowed_hashes_is_kernel_served_and_over_md5_refused() -> None:
    before = _afalg.kernel_operations()
    for name in ("sha1", "sha256", "sha512", "sha3_256"):
        assert hmac.new(KEY, DATA, name).digest() == std_hmac.new(KEY, DATA, name).digest(), name
    assert _afalg.kernel_operations() > before
    with pytest.raises(ValueError) as info:
        hmac.new(KEY, DATA, "md5")
    assert "FIPS mode" in str(getattr(info.value, "reason", info.value)), info.value


def test_aes_is_kernel_served_and_des3_refused_naming_fips_mode() -> None:
    from Crypto.Cipher import AES as RealAES

    from kcapi_hashlib.Cipher import AES, DES3

    nonce = b"n" * 12
    assert AES.new(KEY, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(DATA) == RealAES.new(
        KEY, RealAES.MODE_GCM, nonce=nonce
    ).encrypt_and_digest(DATA)
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm) as info:
        DES3.new(b"0123456789abcdefFEDCBA98", DES3.MODE_CBC, iv=b"i" * 8).encrypt(b"x" * 8)
    assert "FIPS mode" in str(info.value.reason), info.value.reason


def test_doctor_fips_reports_fips_mode_and_what_it_refuses() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "kcapi_hashlib", "doctor", "--fips", "-a", "md5", "-a", "sha256"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = ran.stdout
    assert "FIPS: /proc/sys/crypto/fips_enabled = 1: the kernel is in FIPS mode" in out, (out, ran.stderr)
    lines = {line.split(":", 1)[0].strip(): line for line in out.splitlines() if line.startswith("  ")}
    assert "NOT fips_allowed; not served by the kernel; fallback:" in lines["md5"], out
    assert ": fips_allowed; served by the kernel" in lines["sha256"], out
