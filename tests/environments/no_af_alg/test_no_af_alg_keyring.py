"""Kernel keyring keys where socket(AF_ALG) fails with a real EAFNOSUPPORT (run as test_no_af_alg.py says).

The keyring itself works (add_key and keyctl are not AF_ALG); nothing can compute with the key, since its bytes
are not in this process: every use raises UnsupportedAlgorithm under both policies, saying why, and nothing is
counted as a fallback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import kcapi_hashlib
from kcapi_hashlib import hmac
from kcapi_hashlib.Cipher import AES
from kcapi_hashlib.Hash import CMAC, HMAC, SHA256
from kcapi_hashlib.keyring import KernelKey

USES: dict[str, Callable[[KernelKey], Any]] = {
    "hmac.new": lambda k: hmac.new(k, b"m", "sha256"),
    "hmac.digest": lambda k: hmac.digest(k, b"m", "sha512"),
    "Hash.HMAC": lambda k: HMAC.new(k, b"m", digestmod=SHA256),
    "Hash.CMAC": lambda k: CMAC.new(k, b"m", ciphermod=AES),
    "blake2b": lambda k: kcapi_hashlib.blake2b(b"m", key=k, digest_size=32),
    "AES-CBC": lambda k: AES.new(k, AES.MODE_CBC, iv=bytes(16)),
    "AES-GCM": lambda k: AES.new(k, AES.MODE_GCM, nonce=bytes(12)),
}


@pytest.fixture
def key() -> Iterator[KernelKey]:
    k = KernelKey.add("logon", f"kcapi-test:no-af-alg:{os.getpid()}", bytes(range(32)))
    yield k
    k.invalidate()


@pytest.mark.parametrize("policy", ["strict", "fallback"])
@pytest.mark.parametrize("use", list(USES))
def test_every_use_raises_saying_why(key: KernelKey, use: str, policy: str) -> None:
    previous = kcapi_hashlib.set_policy(policy)
    kcapi_hashlib.reset_fallback_counts()
    try:
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm) as info:
            USES[use](key)
    finally:
        kcapi_hashlib.set_policy(previous)
    text = str(info.value)
    assert info.value.errno == errno.EAFNOSUPPORT, text
    assert "no AF_ALG sockets" in text, text
    assert f"policy {policy!r} cannot fall back: the key is in the kernel keyring" in text, text
    assert kcapi_hashlib.fallback_counts() == {}
