"""Run on a kernel with af_alg_restrict=1 (Linux 7.3+), as any identity:
    python -m kcapi_hashlib vm --kernel 7.3-amd64 --sysctl crypto.af_alg_restrict=1 --user 4242 [--cap net_admin] \\
        -- env KCAPI_HASHLIB_SUITE=restricted python -m pytest tests/environments/restricted
What the kernel refuses this process is probed, never assumed: the strict error names af_alg_restrict, its level
and what would change the answer; fallback serves, counts and warns with that sentence; doctor and list say it."""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import json
import subprocess
import sys
import warnings
from typing import Any

import pytest
from Crypto.Cipher import AES as RefAES

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib._afalg import restrict
from kcapi_hashlib.Cipher import AES
from kcapi_hashlib.cli.listing import algorithm_report

pytestmark = pytest.mark.skipif(restrict.level() != 1, reason=f"af_alg_restrict is {restrict.level()}, not 1")

PROC = restrict.process()
_REMEDIES = ("needs CAP_NET_ADMIN (this process lacks it", "no one may bind this algorithm at this level",
             "cannot tell which")  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kcapi_hashlib", *args], capture_output=True, text=True, timeout=600)


def _refused(kind: str) -> list[dict[str, Any]]:
    return [r for r in algorithm_report([kind]) if r["cause"] == restrict.RESTRICTED]


def test_every_refusal_names_the_level_the_process_and_a_remedy() -> None:
    report = algorithm_report()
    assert any(r["available"] for r in report), "af_alg_restrict=1 served nothing to this process"
    for r in report:
        if r["kernel"] is None:
            continue
        why = _afalg.probe(r["alg_type"], r["kernel"])
        assert r["available"] == (why is None), r
        if why is None:
            continue
        assert why.errno == 2 and why.restriction is not None, r  # level 1 refuses with ENOENT only
        assert "af_alg_restrict=1" in str(why) and PROC.describe() in str(why), str(why)
        assert any(part in str(why) for part in _REMEDIES), str(why)
        if PROC.privileged and why.restriction.cause == restrict.RESTRICTED:
            assert "no one may bind this algorithm at this level" in str(why), str(why)


def test_served_hashes_compute_in_the_kernel() -> None:
    served = [r for r in algorithm_report(["hash"]) if r["available"]]
    assert served, "no hash served"
    for r in served:
        before = _afalg.kernel_operations()
        if r["name"] == "md4":  # not in OpenSSL 3's default provider: PyCryptodome is the reference
            from Crypto.Hash import MD4

            want = MD4.new(b"abc").digest()
        else:
            want = hashlib.new(r["name"], b"abc").digest()
        assert kcapi_hashlib.new(r["name"], b"abc").digest() == want
        assert _afalg.kernel_operations() > before, r["name"]


def test_this_kernels_module_index_is_readable_by_this_process() -> None:
    # The evidence that the kernel has an algorithm the allowlist refused, where nothing loaded it: without it
    # every refusal of a module-built algorithm (sha3-*, with CAP_NET_ADMIN) reads "cannot tell which".
    roots = restrict._module_roots()
    assert restrict.module_aliases(), f"no crypto-* alias readable by {PROC.describe()} under {roots}"


def test_strict_raises_with_the_restriction() -> None:
    refused = _refused("hash")
    assert refused, "level 1 refused no hash the kernel has (sha3-* is on no allowlist as posted)"
    name = refused[0]["name"]
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.new(name, b"x")
    exc = info.value
    assert str(exc) == f"unsupported hash type {name}"  # hashlib's message; the reason is a note
    assert isinstance(exc, kcapi_hashlib.UnsupportedAlgorithm) and exc.errno == 2
    assert isinstance(exc.restriction, restrict.Refusal) and exc.restriction.level == 1
    assert "af_alg_restrict=1 refuses hash algorithm" in str(exc.reason)


def test_strict_cipher_error_carries_the_restriction() -> None:
    if not any(r["name"] == "AES-GCM" for r in _refused("aead")):
        pytest.fail("gcm(aes) is served at level 1: the allowlist grew; choose another refused mode here")
    with pytest.raises(ValueError) as info:
        AES.new(bytes(16), AES.MODE_GCM, nonce=bytes(12)).encrypt(b"x")
    assert str(info.value) == "unsupported cipher type AES-GCM"
    assert "af_alg_restrict=1 refuses aead algorithm 'gcm(aes)'" in str(info.value.reason)  # type: ignore[attr-defined]


def test_fallback_serves_counts_and_warns_with_the_sentence() -> None:
    hashes = _refused("hash")
    assert hashes
    name = hashes[0]["name"]
    kcapi_hashlib.reset_fallback_counts()
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert kcapi_hashlib.new(name, b"abc").digest() == hashlib.new(name, b"abc").digest()
        assert kcapi_hashlib.new(name, b"abc").digest() == hashlib.new(name, b"abc").digest()
        key, nonce = bytes(range(16)), bytes(12)
        ours = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(b"data")
        assert ours == RefAES.new(key, RefAES.MODE_GCM, nonce=nonce).encrypt_and_digest(b"data")
        mac = khmac.new(b"k", b"m", "sha3_256").digest()
        assert mac == std_hmac.new(b"k", b"m", "sha3_256").digest()
    counts = kcapi_hashlib.fallback_counts()
    assert counts.get(name) == 2 and counts.get("AES-GCM") == 1, counts
    messages = [str(w.message) for w in caught if w.category is kcapi_hashlib.KernelFallbackWarning]
    assert any(m.startswith(f"{name} is computed in userspace") and "af_alg_restrict=1" in m for m in messages)
    assert any("AES-GCM" in m and "af_alg_restrict=1" in m for m in messages), messages


def test_doctor_says_what_this_process_is_served() -> None:
    result = _cli("doctor")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr  # sha1 (as posted) binds for everyone: usable for hashing
    assert "af_alg_restrict  [warn] 1 (limited" in out
    assert "served here      [warn] the kernel serves" in out and PROC.describe() in out
    verdict = out.rstrip().splitlines()[-1]
    assert verdict.startswith("OK: AF_ALG works here, limited by af_alg_restrict=1"), verdict
    report = json.loads(_cli("doctor", "--json").stdout)
    assert report["usable"] is True


def test_list_json_carries_the_process_and_each_reason() -> None:
    listing = json.loads(_cli("list", "--json").stdout)
    facts = listing["process"]
    assert facts["af_alg_restrict"] == 1 and facts["euid"] == PROC.euid
    assert facts["cap_net_admin"] == PROC.net_admin and facts["privileged_for_af_alg"] == PROC.privileged
    for r in listing["algorithms"]:
        if r["available"] or r["kernel"] is None:
            continue
        assert r["cause"] in (restrict.RESTRICTED, restrict.MAYBE_RESTRICTED), r
        assert r["remedy"] and r["reason"] and r["errno"] == "ENOENT", r
    text = _cli("list").stdout
    assert f"This process: uid {PROC.euid}" in text and "af_alg_restrict: 1" in text
