"""install() / patched() with PyCryptodome: Crypto.Cipher.AES, DES3, ChaCha20 and Crypto.Random resolve to
kcapi_hashlib (also for names imported before install()), and uninstall() restores everything."""

from __future__ import annotations

import importlib
import sys
import types

import pytest

import kcapi_hashlib
from kcapi_hashlib import Random
from kcapi_hashlib.Cipher import AES, DES3, ChaCha20


def test_crypto_names_resolve_to_the_kernel_and_back() -> None:
    import Crypto.Cipher.AES as CAES
    import Crypto.Cipher.ChaCha20 as CChaCha20
    import Crypto.Cipher.DES3 as CDES3
    import Crypto.Random as CRandom

    # Imported before install(): a module first imported while installed keeps what it imported then.
    mode_cbc = importlib.import_module("Crypto.Cipher._mode_cbc")
    originals = (CAES.new, CDES3.new, CChaCha20.new, CRandom.get_random_bytes, CRandom.new)
    with kcapi_hashlib.patched():
        assert CAES.new is AES.new and CDES3.new is DES3.new and CChaCha20.new is ChaCha20.new
        assert CRandom.get_random_bytes is Random.get_random_bytes and CRandom.new is Random.new
        from Crypto.Random import get_random_bytes

        assert get_random_bytes is Random.get_random_bytes
        cipher = CAES.new(bytes(16), CAES.MODE_CBC, bytes(16))
        assert type(cipher).__module__ == "kcapi_hashlib.Cipher._mode_cbc"
        # PyCryptodome's own mode modules took `get_random_bytes` by name: the kernel's now.
        assert mode_cbc.get_random_bytes is Random.get_random_bytes
    assert (CAES.new, CDES3.new, CChaCha20.new, CRandom.get_random_bytes, CRandom.new) == originals
    assert mode_cbc.get_random_bytes is originals[3]


def test_names_imported_before_install_are_replaced() -> None:
    from Crypto.Cipher.AES import new as early_new

    mod = types.ModuleType("user_module_for_install_test")
    mod.new = early_new  # type: ignore[attr-defined]
    sys.modules[mod.__name__] = mod
    try:
        with kcapi_hashlib.patched():
            assert mod.new is AES.new  # type: ignore[attr-defined]
        assert mod.new is early_new  # type: ignore[attr-defined]
    finally:
        del sys.modules[mod.__name__]


def test_modes_and_constants_stay_pycryptodome_compatible() -> None:
    import Crypto.Cipher.AES as CAES

    with kcapi_hashlib.patched():
        assert CAES.MODE_GCM == 11 and CAES.block_size == 16 and tuple(CAES.key_size) == (16, 24, 32)
        assert not hasattr(CAES, "MODE_XTS_UNITS")  # install() never adds API the real module lacks
        assert getattr(CAES, "MODE_XTS", 16) == 16  # PyCryptodome 4.5's own XTS where the real module has it


def test_install_leaves_os_urandom_alone() -> None:
    import os
    import random

    before = (os.urandom, random._urandom)  # type: ignore[attr-defined]
    with kcapi_hashlib.patched():
        assert (os.urandom, random._urandom) == before  # type: ignore[attr-defined]


def test_legacy_ciphers_are_kernel_served_after_install() -> None:
    """Crypto.Cipher.DES/Blowfish/CAST/ARC4: after install() the kernel computes them (des, blowfish, cast5,
    ecb(arc4)) with PyCryptodome's answers; where this kernel lacks one, the policy decides (strict raises)."""
    from Crypto.Cipher import ARC4 as CARC4
    from Crypto.Cipher import CAST as CCAST
    from Crypto.Cipher import DES as CDES
    from Crypto.Cipher import Blowfish as CBlowfish

    from kcapi_hashlib import _afalg
    from kcapi_hashlib.Cipher import ARC4, CAST, DES, Blowfish

    key = bytes(range(16))
    calls = {
        "des": lambda m: m.new(key[:8], m.MODE_CBC, key[8:]).encrypt(b"sixteen bytes!!!"),
        "blowfish": lambda m: m.new(key, m.MODE_CTR, nonce=b"1234").encrypt(b"any length"),
        "cast5": lambda m: m.new(key[:10], m.MODE_ECB).encrypt(b"8 bytes!"),
        "arc4": lambda m: m.new(key, drop=3072).encrypt(b"stream"),
    }
    modules = {"des": (CDES, DES), "blowfish": (CBlowfish, Blowfish), "cast5": (CCAST, CAST), "arc4": (CARC4, ARC4)}
    kernel = {"des": "ecb(des)", "blowfish": "ecb(blowfish)", "cast5": "ecb(cast5)", "arc4": "ecb(arc4)"}
    expected = {name: call(modules[name][0]) for name, call in calls.items()}
    originals = [m[0].new for m in modules.values()]
    previous = kcapi_hashlib.set_policy("strict")
    try:
        with kcapi_hashlib.patched():
            for name, call in calls.items():
                real, ours = modules[name]
                assert real.new is ours.new
                if _afalg.probe("skcipher", kernel[name]) is not None:
                    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="unsupported cipher type"):
                        call(real)
                    continue
                before = _afalg.kernel_operations()
                assert call(real) == expected[name], name
                assert _afalg.kernel_operations() > before, name
    finally:
        kcapi_hashlib.set_policy(previous)
    assert [m[0].new for m in modules.values()] == originals
