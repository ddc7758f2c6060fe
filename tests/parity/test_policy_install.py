"""Policy (strict / fallback) and install() / uninstall() / patched(), under the real kernel."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg


def test_strict_raises_hashlibs_error_with_a_reason() -> None:
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.new("shake_128")
    assert str(info.value) == "unsupported hash type shake_128"  # hashlib's text; the reason is a note
    assert isinstance(info.value, kcapi_hashlib.UnsupportedAlgorithm)
    assert "no AF_ALG hash for shake_128" in str(info.value.reason)


def test_strict_blake2_parameters_the_kernel_cannot_take() -> None:
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.blake2b(salt=b"salt")
    assert str(info.value) == "unsupported hash type blake2b"
    assert "takes no salt, person or tree parameters" in str(info.value.reason)
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.blake2b(digest_size=17)
    assert "digest sizes 20, 32, 48, 64 only, not 17" in str(info.value.reason)


def test_fallback_serves_counts_and_warns_once() -> None:
    kcapi_hashlib.reset_fallback_counts()
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = kcapi_hashlib.shake_128(b"x")
        b = kcapi_hashlib.new("sha512_256", b"x")
        kcapi_hashlib.shake_128(b"y")
        c = kcapi_hashlib.blake2b(b"x", salt=b"pepper")
    assert a.hexdigest(8) == hashlib.shake_128(b"x").hexdigest(8)
    assert b.digest() == hashlib.new("sha512_256", b"x").digest()
    assert c.digest() == hashlib.blake2b(b"x", salt=b"pepper").digest()
    assert kcapi_hashlib.fallback_counts() == {"shake_128": 2, "sha512_256": 1, "blake2b": 1}
    fallback_warnings = [w for w in caught if issubclass(w.category, kcapi_hashlib.KernelFallbackWarning)]
    assert len(fallback_warnings) == 3  # once per algorithm
    assert fallback_warnings[0].filename == __file__  # points at the caller
    # Algorithms the kernel has are still served by it under fallback.
    assert isinstance(kcapi_hashlib.sha256(b"x"), kcapi_hashlib.HASH)


def test_set_policy_validates() -> None:
    with pytest.raises(ValueError, match="policy must be one of 'strict', 'fallback', not 'lenient'"):
        kcapi_hashlib.set_policy("lenient")
    assert kcapi_hashlib.get_policy() == "strict"


def test_policy_from_environment() -> None:
    code = "import kcapi_hashlib; print(kcapi_hashlib.get_policy())"
    for value, expected in (("fallback", "fallback"), ("STRICT", "strict"), ("", "strict")):
        env = {"KCAPI_HASHLIB_POLICY": value, "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", code], env={**env, **_pythonpath()}, capture_output=True, text=True)
        assert out.stdout.strip() == expected, out.stderr
    env = {"KCAPI_HASHLIB_POLICY": "maybe", **_pythonpath()}
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "KCAPI_HASHLIB_POLICY='maybe' is not a policy; use one of strict, fallback" in bad.stderr


def _pythonpath() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME", "VIRTUAL_ENV")}


def test_kernel_operations_are_counted() -> None:
    before = _afalg.kernel_operations()
    kcapi_hashlib.sha256(b"counted").digest()
    assert _afalg.kernel_operations() >= before + 2


def test_install_replaces_module_attributes_and_held_references() -> None:
    import types

    user = types.ModuleType("some_user_module")  # a module that imported names from hashlib earlier
    exec("from hashlib import sha256, md5\nfrom hashlib import sha1 as renamed_sha1", user.__dict__)
    sys.modules[user.__name__] = user
    original_sha256, original_new, original_sha1 = hashlib.sha256, hashlib.new, hashlib.sha1
    try:
        with kcapi_hashlib.patched():
            assert kcapi_hashlib.installed()
            import hashlib as again

            assert again.sha256 is kcapi_hashlib.sha256
            assert isinstance(hashlib.sha256(b"x"), kcapi_hashlib.HASH)
            assert isinstance(hashlib.new("sha1"), kcapi_hashlib.HASH)
            assert hashlib.sha256(b"abc").hexdigest() == original_sha256(b"abc").hexdigest()
            assert user.sha256 is kcapi_hashlib.sha256 and user.md5 is kcapi_hashlib.md5
            # Only references under hashlib's own name are replaced: an alias may be anything.
            assert user.renamed_sha1 is original_sha1
        assert not kcapi_hashlib.installed()
        assert hashlib.sha256 is original_sha256 and hashlib.new is original_new
        assert user.sha256 is original_sha256
    finally:
        del sys.modules[user.__name__]


def test_install_leaves_the_same_objects_elsewhere_alone() -> None:
    import _hashlib  # hashlib.sha256 IS _hashlib.openssl_sha256: that module must keep its own

    before = dict(vars(_hashlib))
    with kcapi_hashlib.patched():
        assert dict(vars(_hashlib)) == before


def test_install_is_idempotent_and_uninstall_restores() -> None:
    original = hashlib.md5
    kcapi_hashlib.install()
    kcapi_hashlib.install()
    try:
        assert hashlib.md5 is kcapi_hashlib.md5
    finally:
        kcapi_hashlib.uninstall()
    assert hashlib.md5 is original
    kcapi_hashlib.uninstall()  # harmless when not installed
    assert hashlib.md5 is original


def test_install_in_a_fresh_interpreter_before_importing_users() -> None:
    code = (
        "import kcapi_hashlib; kcapi_hashlib.install()\n"
        "import hashlib, uuid\n"
        "print(type(hashlib.sha1()).__module__, uuid.uuid5(uuid.NAMESPACE_DNS, 'python.org'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**_pythonpath()})
    assert out.returncode == 0, out.stderr
    module, value = out.stdout.split()
    assert module == "kcapi_hashlib._hash_object"
    import uuid

    assert value == str(uuid.uuid5(uuid.NAMESPACE_DNS, "python.org"))


def test_replacements_cover_every_hash_module_of_the_table() -> None:
    """install()'s REPLACEMENTS derive the Crypto.Hash modules from kcapi_hashlib._algorithms: every
    kcapi_hashlib.Hash module is replaced (both namespaces), and every derived one exists."""
    import importlib

    from kcapi_hashlib import Hash, _install

    targets = dict(_install.REPLACEMENTS)
    for name in Hash.__all__:
        for prefix in ("Crypto", "Cryptodome"):
            assert targets.get(f"{prefix}.Hash.{name}") == f"kcapi_hashlib.Hash.{name}", name
    for target, ours in _install.REPLACEMENTS:
        importlib.import_module(ours)
        assert ours.startswith("kcapi_hashlib") and (target in ("hashlib", "hmac") or target.startswith("Crypto"))
