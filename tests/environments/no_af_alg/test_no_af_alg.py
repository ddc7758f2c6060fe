"""Run where socket(AF_ALG) fails with a real EAFNOSUPPORT: in a VM with the af_alg module refused
    python -m kcapi_hashlib vm --refuse af_alg -- \\
        env KCAPI_HASHLIB_SUITE=no-af-alg python -m pytest tests/environments/no_af_alg
(or directly on a host whose kernel has no AF_ALG, like the CI machine). conftest fails this suite if AF_ALG works."""

from __future__ import annotations

import errno
import hashlib
import io
import subprocess
import sys
import warnings

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg


def test_socket_fails_with_eafnosupport() -> None:
    why = _afalg.af_alg_status()
    assert why is not None and why.errno == errno.EAFNOSUPPORT and why.step == "socket"
    assert "no AF_ALG sockets" in str(why)


@pytest.mark.parametrize("name", ["sha256", "md5", "sha3_512", "blake2b"])
def test_strict_raises_hashlibs_error_with_eafnosupport(name: str) -> None:
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.new(name, b"data")
    assert str(info.value) == f"unsupported hash type {name}"
    assert info.value.errno == errno.EAFNOSUPPORT  # type: ignore[attr-defined]
    assert "EAFNOSUPPORT" in str(info.value.reason)  # type: ignore[attr-defined]


def test_nothing_is_available() -> None:
    assert kcapi_hashlib.algorithms_available == set()
    assert kcapi_hashlib.algorithms_guaranteed == set()


def test_fallback_serves_everything_and_counts() -> None:
    kcapi_hashlib.reset_fallback_counts()
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
        for name in ("sha256", "sha1", "sha3_256"):
            assert kcapi_hashlib.new(name, b"x").digest() == hashlib.new(name, b"x").digest()
        assert kcapi_hashlib.file_digest(io.BytesIO(b"f"), "md5").digest() == hashlib.md5(b"f").digest()
    assert kcapi_hashlib.fallback_counts() == {"sha256": 1, "sha1": 1, "sha3_256": 1, "md5": 1}


def test_strict_message_in_a_fresh_interpreter() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import kcapi_hashlib; kcapi_hashlib.sha256()"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "ValueError: unsupported hash type sha256" in proc.stderr or "UnsupportedAlgorithm" in proc.stderr
    assert "EAFNOSUPPORT" in proc.stderr


def test_doctor_explains_and_exits_1() -> None:
    """Run in a VM whose modprobe refuses af_alg (tox: `vm --refuse af_alg`): doctor exits 1, says why and
    shows the refusing rule it found through the VM's modprobe wrapper."""
    proc = subprocess.run([sys.executable, "-m", "kcapi_hashlib", "doctor"], capture_output=True, text=True)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "socket(AF_ALG)   [FAIL] EAFNOSUPPORT: this kernel has no AF_ALG sockets" in out
    assert "install af_alg /bin/false" in out
    assert "af_alg module    [info] available, not loaded" in out
    verdict = out.rstrip().splitlines()[-1]
    assert verdict.startswith("NOT USABLE: this kernel has no AF_ALG sockets (EAFNOSUPPORT): "), verdict
    assert "modprobe rules refuse its modules" in verdict, verdict
