"""With only pycryptodomex installed (the Cryptodome package, no Crypto), kcapi_hashlib
mirrors it: install() replaces Cryptodome.*, and what the kernel does not serve falls back to Cryptodome's
objects (fallback policy) or raises (strict), never to a missing Crypto package.

Each case runs in a fresh interpreter whose `Crypto` package is made unimportable (a meta path finder that
refuses it), under the real kernel, so pycryptodome's presence in this environment proves nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("Cryptodome", reason="pycryptodomex is a test requirement (the `test` extra)")

PRELUDE = """
import sys

class NoCrypto:
    # as if pycryptodome were not installed: only pycryptodomex (Cryptodome) is
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "Crypto" or name.startswith("Crypto."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoCrypto)
import warnings
import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import real_package
assert real_package() == "Cryptodome", real_package()
"""

CASES = {
    # a mode kcapi_hashlib has no kernel implementation of: fallback is Cryptodome's own object
    "aes-eax-fallback": """
        from kcapi_hashlib.Cipher import AES
        from Cryptodome.Cipher import AES as Real
        kcapi_hashlib.set_policy("fallback")
        warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
        c = AES.new(bytes(16), AES.MODE_EAX, nonce=bytes(16))
        assert type(c).__module__.startswith("Cryptodome."), type(c)
        ref = Real.new(bytes(16), Real.MODE_EAX, nonce=bytes(16))
        assert c.encrypt_and_digest(b"data") == ref.encrypt_and_digest(b"data")
        assert kcapi_hashlib.fallback_counts() == {"AES-EAX": 1}, kcapi_hashlib.fallback_counts()
    """,
    "des3-openpgp-fallback": """
        from kcapi_hashlib.Cipher import DES3
        kcapi_hashlib.set_policy("fallback")
        warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
        key = DES3.adjust_key_parity(bytes(range(24)))
        c = DES3.new(key, DES3.MODE_OPENPGP, iv=bytes(8))
        assert type(c).__module__.startswith("Cryptodome."), type(c)
    """,
    "strict-raises-not-importerror": """
        from kcapi_hashlib.Cipher import AES
        try:
            AES.new(bytes(16), AES.MODE_EAX, nonce=bytes(16))
        except kcapi_hashlib.UnsupportedAlgorithm as e:
            assert str(e) == "unsupported cipher type AES-EAX", e
        else:
            raise AssertionError("strict did not raise")
    """,
    # install(): Cryptodome.* is replaced; the legacy ciphers are the kernel's
    "install-cryptodome": """
        kcapi_hashlib.install()
        from Cryptodome.Cipher import AES, DES, ARC4, ARC2
        from Cryptodome.Hash import SHA256, HMAC
        import hashlib
        before = _afalg.kernel_operations()
        assert AES.new.__module__ == "kcapi_hashlib.Cipher.AES" and DES.new.__module__ == "kcapi_hashlib.Cipher.DES"
        print(DES.new(bytes(range(8)), DES.MODE_ECB).encrypt(b"8 bytes!").hex())  # the parent checks it
        mac = HMAC.new(b"k", b"m", digestmod=SHA256).hexdigest()
        assert mac == "b60090e3052297aeb5a080889ce2fc4bca957e756faeb4df7d31800ca1e771ec", mac  # the stdlib's hmac
        assert type(HMAC.new(b"k", digestmod=SHA256)).__module__.startswith("kcapi_hashlib"), "not replaced"
        assert ARC4.new(b"Key").encrypt(b"Plaintext").hex() == "bbf316e8d940af0ad3"  # the well-known vector
        assert _afalg.kernel_operations() > before
        kcapi_hashlib.set_policy("fallback")
        warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
        ARC2.new(bytes(16), ARC2.MODE_ECB).encrypt(b"8 bytes!")
        assert kcapi_hashlib.fallback_counts().get("ARC2") == 1, kcapi_hashlib.fallback_counts()
        import importlib
        try:
            importlib.import_module("Crypto.Cipher.AES")
        except ImportError:
            pass
        else:
            raise AssertionError("Crypto is importable: the test proves nothing")
    """,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_only_pycryptodomex_installed(case: str) -> None:
    source = PRELUDE + textwrap.dedent(CASES[case]) + "\nprint('ok')\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCAPI_HASHLIB_")}
    ran = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0 and ran.stdout.strip().endswith("ok"), f"{case}:\n{ran.stderr}"
    if case == "install-cryptodome":  # the child's Cryptodome.Cipher.DES (ours) == pycryptodomex's == the kernel's
        from Cryptodome.Cipher import DES as RealDES

        from kcapi_hashlib.Cipher import DES

        out = ran.stdout.split()[0]
        assert out == RealDES.new(bytes(range(8)), RealDES.MODE_ECB).encrypt(b"8 bytes!").hex()
        assert out == DES.new(bytes(range(8)), DES.MODE_ECB).encrypt(b"8 bytes!").hex()
