"""PyCryptodome's own SelfTest suites, run with kcapi_hashlib installed in place of Crypto.* under the fallback
policy, for every mode and hash kcapi_hashlib mirrors.

One child pytest runs them all (the installed PyCryptodome's Crypto.SelfTest modules, with -p
kcapi_hashlib.pytest_plugin --kcapi-policy fallback and tests/support/_selftest_plugin.py); each suite below is then
one test here that fails with the child's failures for that suite. Under fallback, what no kernel has (EAX, SIV,
OCB, KW, KWP, OpenPGP, GCM-SIV, ...) is computed by PyCryptodome, counted; test_nothing_the_kernel_has_fell_back
checks every such count against ALLOWED_FALLBACKS, so an algorithm the kernel serves that quietly went to
userspace fails. Exclusions (skips inside the child) are _selftest_plugin.EXCLUDED, each with its reason.

The PyCryptodome version is the `test` extra's pin (pyproject.toml). Its SelfTest is pytest-based from 4.0 on;
an older install skips this module, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import kcapi_hashlib
from kcapi_hashlib._afalg import core
from kcapi_hashlib.Cipher import AES, API_VERSION, real_package

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    real_package() != "Crypto" or API_VERSION < (4, 0),
    reason=f"needs pycryptodome >= 4.0 (pytest-based Crypto.SelfTest); the PyCryptodome here: {real_package()} "
    f"{API_VERSION}",
)

# The SelfTest modules of what kcapi_hashlib mirrors (Crypto.Cipher.AES's modes, DES3, DES, Blowfish, CAST,
# ARC4, ChaCha20(_Poly1305); Crypto.Hash's SHA-1/2/3, MD5, MD4, RIPEMD-160, BLAKE2b, HMAC, CMAC and the one-shot
# digest(); Protocol.KDF; Random).
SUITES = [
    *(
        f"Cipher.test_{s}"
        for s in (
            "AES", "CBC", "CCM", "CFB", "CTR", "ChaCha20", "ChaCha20_Poly1305", "DES", "DES3", "EAX", "GCM",
            "GCM_SIV", "OCB", "OFB", "OpenPGP", "SIV", "XTS", "KW", "ARC4", "Blowfish", "CAST", "message_too_long",
        )
    ),
    *(
        f"Hash.test_{s}"
        for s in (
            "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3_224", "SHA3_256", "SHA3_384", "SHA3_512", "MD5",
            "MD4", "RIPEMD160", "BLAKE2", "HMAC", "CMAC", "oneshot_digest",
        )
    ),
    "Protocol.test_KDF",
    "Random.test_random",
]  # fmt: skip

# What may be computed by PyCryptodome in the child: the modes and functions no kernel has (kcapi_hashlib has no
# kernel implementation of them), each with why. Anything else counted as a fallback fails the run.
ALLOWED_FALLBACKS = {
    **{f"{c}-EAX": "no kernel EAX" for c in ("AES", "DES3", "DES", "Blowfish", "CAST")},
    **{f"{c}-OPENPGP": "no kernel OpenPGP CFB" for c in ("AES", "DES3", "DES", "Blowfish", "CAST")},
    "AES-SIV": "no kernel SIV (RFC 5297)", "AES-OCB": "no kernel OCB", "AES-KW": "no kernel key wrap",
    "AES-KWP": "no kernel key wrap", "AES-GCM_SIV": "no kernel GCM-SIV (RFC 8452)",
    "ARC2": "no kernel RC2", "cmac(ARC2)": "no kernel RC2", "Salsa20": "no kernel Salsa20",
    "BLAKE2s": "no kernel BLAKE2s hash (crypto/blake2s_generic.c is gone since 5.19)",
    "SHAKE128": "no kernel SHAKE", "SHAKE256": "no kernel SHAKE",
    "blake2b": "digest sizes and key lengths beyond the kernel's blake2b-160/256/384/512",
    "sha512_224": "no kernel SHA-512/224", "sha512_256": "no kernel SHA-512/256",
    "Poly1305": "Crypto.Hash.Poly1305 is not mirrored (PyCryptodome's XChaCha20-Poly1305 uses it where the kernel "
    "has no poly1305 hash to compose kcapi_hashlib's from, e.g. Linux 7.2)",
    "PBKDF1": "no kernel PBKDF1", "bcrypt": "no kernel bcrypt", "scrypt": "no kernel scrypt",
}  # fmt: skip


# Algorithms the kernel has, which may still be computed in userspace for the reason given (a substring of it).
ALLOWED_REASONS = {
    # test_EAX's test_unknown_parameters: PyCryptodome's EAX (a fallback) hands an unknown cipher parameter to
    # CMAC, which the kernel's cmac(aes) cannot take; PyCryptodome's CMAC then raises the TypeError tested.
    "cmac(AES)": "takes no cipher parameters",
}


def _kernel_lacks(reason: str) -> bool:
    """The fallback's reason is that this kernel has no such algorithm (bind: ENOENT), e.g. poly1305 on Linux 7.2
    for XChaCha20-Poly1305: not something the kernel has."""
    return "cannot bind" in reason and "ENOENT" in reason


def _allowed(algorithm: str, reasons: dict[str, int]) -> bool:
    if algorithm in ALLOWED_FALLBACKS:
        return True
    if algorithm.startswith("gcm(aes) message of ") and core.probe("hash", "ghash") is not None:
        # A GCM message beyond one gcm(aes) request (ENOMEM/EMSGSIZE) whose MAC cannot be streamed: this kernel
        # has no ghash hash (Linux 7.x); the policy computes the tag (kcapi_hashlib.Cipher._aead).
        return True
    return all(ALLOWED_REASONS.get(algorithm, "\0") in r or _kernel_lacks(r) for r in reasons)


@pytest.fixture(scope="module")
def selftest_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the suites once in a child pytest (its own rootdir, so this repository's conftest and options stay
    out); returns {"counts": {suite: Counter}, "failures": {suite: [...]}, "accounting": ..., "tail": ...}."""
    work = tmp_path_factory.mktemp("selftest")
    (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    report = work / "report.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["KCAPI_SELFTEST_REPORT"] = str(report)
    for name in ("KCAPI_HASHLIB_POLICY", "KCAPI_HASHLIB_INSTALL", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "kcapi_hashlib.pytest_plugin",
        "-p", "Crypto.SelfTest.plugin", "-p", "tests.support._selftest_plugin", "--kcapi-policy", "fallback",
        "--pyargs", *(f"Crypto.SelfTest.{s}" for s in SUITES),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=3000)
    tail = f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    if not report.exists():
        pytest.fail(f"the SelfTest run left no report ({tail})")
    data = json.loads(report.read_text(encoding="utf-8"))
    counts: dict[str, Counter[str]] = {s: Counter() for s in SUITES}
    failures: dict[str, list[str]] = {s: [] for s in SUITES}
    fell_back: dict[str, list[str]] = {}  # algorithm -> the tests during which it was computed in userspace
    for test, (module, outcome, message, fallbacks) in data["outcomes"].items():
        counts.setdefault(module, Counter())[outcome] += 1
        if outcome == "failed":
            failures.setdefault(module, []).append(f"{test}: {message}")
        for algorithm in fallbacks:
            fell_back.setdefault(algorithm, []).append(test)
    table = "\n".join(f"  {s:32} {dict(c)}" for s, c in counts.items())
    print(f"PyCryptodome {API_VERSION} SelfTest with kcapi_hashlib installed (fallback policy):\n{table}")
    return {
        "counts": counts,
        "failures": failures,
        "accounting": data["accounting"],
        "fell_back": fell_back,
        "tail": tail,
    }


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES)
def test_selftest_suite(selftest_run: dict[str, Any], suite: str) -> None:
    counts = selftest_run["counts"][suite]
    assert sum(counts.values()), f"no SelfTest case of {suite} ran:\n{selftest_run['tail']}"
    failed = selftest_run["failures"][suite]
    assert not failed, f"{len(failed)} of {sum(counts.values())} failed ({dict(counts)}):\n" + "\n".join(failed[:40])


@pytest.mark.slow
def test_no_unattributed_cases(selftest_run: dict[str, Any]) -> None:
    assert not selftest_run["counts"].get("?"), selftest_run["failures"].get("?")


@pytest.mark.slow
def test_nothing_the_kernel_has_fell_back(selftest_run: dict[str, Any]) -> None:
    accounting = selftest_run["accounting"]
    unexpected = {
        f["algorithm"]: (f["reasons"], selftest_run["fell_back"].get(f["algorithm"], [])[:5])
        for f in accounting["fallbacks"]
        if not _allowed(f["algorithm"], f["reasons"])
    }
    assert not unexpected, f"computed in userspace although not a policy mode: {unexpected}"
    served = {k["algorithm"] for k in accounting["kernel"]}
    # This process too: 4.5's XTS API is the kernel's here, under strict (no fallback possible)
    previous = kcapi_hashlib.set_policy("strict")
    try:
        ct = AES.new(bytes(range(32)), AES.MODE_XTS, tweak=bytes(16)).encrypt(bytes(40))
        assert AES.new(bytes(range(32)), AES.MODE_XTS, tweak=bytes(16)).decrypt(ct) == bytes(40)
    finally:
        kcapi_hashlib.set_policy(previous)
    for name in ("xts(aes)", "gcm(aes)", "ccm(aes)", "ctr(aes)", "cbc(aes)", "cmac(aes)", "hmac(sha256)", "sha256"):
        assert name in served, f"the kernel's {name} did nothing: {sorted(served)}"
