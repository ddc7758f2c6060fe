"""Run on a kernel with af_alg_restrict=2 (Linux 7.3+):
    python -m kcapi_hashlib vm --kernel 7.3-amd64 --sysctl crypto.af_alg_restrict=2 \\
        -- env KCAPI_HASHLIB_SUITE=restricted python -m pytest tests/environments/restricted
alg_create answers socket(AF_ALG) with EAFNOSUPPORT for every process: the error says so (not "no AF_ALG in this
kernel"), fallback serves, counts and warns with that sentence, doctor exits 1 naming the sysctl."""

from __future__ import annotations

import errno
import hashlib
import json
import subprocess
import sys
import warnings

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import restrict

pytestmark = pytest.mark.skipif(restrict.level() != 2, reason=f"af_alg_restrict is {restrict.level()}, not 2")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kcapi_hashlib", *args], capture_output=True, text=True, timeout=600)


def test_socket_is_refused_by_the_sysctl() -> None:
    why = _afalg.af_alg_status()
    assert why is not None and why.errno == errno.EAFNOSUPPORT and why.step == "socket"
    assert why.restriction is not None and why.restriction.cause == restrict.DISABLED
    text = str(why)
    for part in ("AF_ALG is disabled", "af_alg_restrict is 2", "EAFNOSUPPORT", "for every process, root included",
                 "no one may bind any algorithm at this level"):  # fmt: skip
        assert part in text, (part, text)


def test_strict_raises_naming_the_level() -> None:
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.sha256(b"x")
    exc = info.value
    assert str(exc) == "unsupported hash type sha256"
    assert isinstance(exc, kcapi_hashlib.UnsupportedAlgorithm) and exc.errno == errno.EAFNOSUPPORT
    assert "af_alg_restrict is 2" in str(exc.reason)


def test_fallback_serves_counts_and_warns() -> None:
    kcapi_hashlib.reset_fallback_counts()
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("sha256", "sha1", "sha3_256"):
            assert kcapi_hashlib.new(name, b"x").digest() == hashlib.new(name, b"x").digest()
    assert kcapi_hashlib.fallback_counts() == {"sha256": 1, "sha1": 1, "sha3_256": 1}
    messages = [str(w.message) for w in caught if w.category is kcapi_hashlib.KernelFallbackWarning]
    assert len(messages) == 3 and all("af_alg_restrict is 2" in m for m in messages), messages


def test_doctor_and_list_name_the_sysctl() -> None:
    result = _cli("doctor")
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = result.stdout.rstrip().splitlines()[-1]
    assert verdict.startswith("NOT USABLE: AF_ALG is disabled by af_alg_restrict=2"), verdict
    assert "af_alg_restrict  [warn] 2 (AF_ALG disabled)" in result.stdout
    listing = json.loads(_cli("list", "--json").stdout)
    assert listing["process"]["af_alg_restrict"] == 2 and listing["process"]["socket"] == "EAFNOSUPPORT"
    rows = [r for r in listing["algorithms"] if r["kernel"] is not None]
    assert rows and all(r["cause"] == restrict.DISABLED and not r["available"] for r in rows)
