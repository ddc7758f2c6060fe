"""Keys from the kernel keyring at the AF_ALG layer (ALG_SET_KEY_BY_KEY_SERIAL, Linux >= 6.2), on a real kernel."""

from __future__ import annotations

import ctypes
import errno
import hmac
import os

import pytest

from kcapi_hashlib._afalg import core, hash_oneshot, keyed
from kcapi_hashlib._afalg import keyring as kr

KEY = bytes(range(32))


def _logon(desc: str) -> int:
    return kr.add_key("logon", f"kcapi-test:{desc}:{os.getpid()}", KEY, kr.KEY_SPEC_SESSION_KEYRING)


def _new_enough() -> bool:
    return kr.serial_keys_known()  # "7.3-amd64" is a release too


def test_too_old_kernel_says_so() -> None:
    if _new_enough():
        pytest.skip("kernel >= 6.2 has ALG_SET_KEY_BY_KEY_SERIAL (the too-old sentence is for 6.1)")
    with pytest.raises(core.KernelError) as info:
        core.Tfm("hash", "hmac(sha256)", kr.Serial(_logon("old")))
    assert info.value.errno == errno.ENOPROTOOPT
    assert "arrived in Linux 6.2" in str(info.value)


def test_logon_key_equals_bytes_key_and_revoke_drops_cache() -> None:
    if not _new_enough():
        pytest.skip("ALG_SET_KEY_BY_KEY_SERIAL arrived in Linux 6.2")
    serial = _logon("diff")
    t = keyed.cached_tfm("hash", "hmac(sha256)", kr.Serial(serial))
    assert hash_oneshot(t, (b"message",), 32) == hmac.new(KEY, b"message", "sha256").digest()
    assert keyed.cached_tfm("hash", "hmac(sha256)", kr.Serial(serial)) is t
    kr.revoke(serial)
    with pytest.raises(kr.KeyringError) as info:
        keyed.cached_tfm("hash", "hmac(sha256)", kr.Serial(serial))
    assert info.value.errno == errno.EKEYREVOKED
    with pytest.raises(core.KernelError) as info2:
        core.Tfm("hash", "hmac(sha256)", kr.Serial(serial))
    assert info2.value.errno == errno.EKEYREVOKED and "revoked" in str(info2.value)


def test_keyring_is_not_a_key() -> None:
    if not _new_enough():
        pytest.skip("ALG_SET_KEY_BY_KEY_SERIAL arrived in Linux 6.2")
    session = kr._keyctl(kr.KEYCTL_GET_KEYRING_ID, "KEYCTL_GET_KEYRING_ID", -3, ctypes.c_int(1))
    with pytest.raises(core.KernelError) as info:
        core.Tfm("hash", "hmac(sha256)", kr.Serial(session))
    assert info.value.errno == errno.ENOPROTOOPT and "'logon', 'user'" in str(info.value)
