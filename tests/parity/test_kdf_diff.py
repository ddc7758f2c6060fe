"""Differential property tests of the KDFs: kcapi_hashlib.pbkdf2_hmac against hashlib.pbkdf2_hmac, and
kcapi_hashlib.Protocol.KDF's PBKDF2, HKDF and SP800_108_Counter against PyCryptodome's, with our hash modules
and PyCryptodome's, passwords/keys of every length class, and the optional arguments in every form."""

from __future__ import annotations

import hashlib
import importlib
from typing import Any

import pytest
from Crypto.Hash import HMAC as PyHMAC
from Crypto.Protocol import KDF as PyKDF
from hypothesis import given
from hypothesis import strategies as st

import kcapi_hashlib
from kcapi_hashlib.Hash import HMAC
from kcapi_hashlib.Protocol import KDF
from tests.support import requires

_MODULES = {"md5": "MD5", "sha1": "SHA1", "sha224": "SHA224", "sha256": "SHA256", "sha384": "SHA384",
            "sha512": "SHA512", "sha3_256": "SHA3_256", "ripemd160": "RIPEMD160"}  # fmt: skip
pytestmark = requires.hmacs("name")  # every test's PRF is the kernel's hmac(<name>)

secrets = st.one_of(
    st.binary(max_size=70), st.binary(min_size=129, max_size=300), st.binary(min_size=4097, max_size=5000)
)


def _mods(name: str) -> tuple[Any, Any]:
    leaf = _MODULES[name]
    return importlib.import_module(f"kcapi_hashlib.Hash.{leaf}"), importlib.import_module(f"Crypto.Hash.{leaf}")


@pytest.mark.parametrize("name", sorted(_MODULES))
@given(
    password=secrets,
    salt=st.binary(max_size=80),
    iterations=st.integers(1, 40),
    dklen=st.one_of(st.none(), st.integers(1, 130)),
)
def test_pbkdf2_hmac(name: str, password: bytes, salt: bytes, iterations: int, dklen: Any) -> None:
    assert kcapi_hashlib.pbkdf2_hmac(name, password, salt, iterations, dklen) == hashlib.pbkdf2_hmac(
        name, password, salt, iterations, dklen
    )


@pytest.mark.parametrize("name", sorted(_MODULES))
@given(
    password=st.one_of(secrets, st.text(alphabet=st.characters(max_codepoint=255), max_size=20)),
    salt=st.binary(max_size=40),
    count=st.integers(1, 30),
    dk_len=st.integers(0, 100),
    theirs=st.booleans(),
)
def test_pbkdf2(name: str, password: Any, salt: bytes, count: int, dk_len: int, theirs: bool) -> None:
    ours_mod, py_mod = _mods(name)
    want = PyKDF.PBKDF2(password, salt, dk_len, count, hmac_hash_module=py_mod)
    assert KDF.PBKDF2(password, salt, dk_len, count, hmac_hash_module=py_mod if theirs else ours_mod) == want
    our_prf = lambda p, s: HMAC.new(p, s, ours_mod).digest()  # noqa: E731
    assert KDF.PBKDF2(password, salt, dk_len, min(count, 3), prf=our_prf) == PyKDF.PBKDF2(
        password, salt, dk_len, min(count, 3), prf=lambda p, s: PyHMAC.new(p, s, py_mod).digest()
    )


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha512", "sha3_256"])
@given(
    master=secrets,
    key_len=st.integers(1, 60),
    num_keys=st.integers(1, 4),
    salt=st.one_of(st.none(), st.binary(max_size=80)),
    context=st.one_of(st.none(), st.binary(max_size=50)),
    theirs=st.booleans(),
)
def test_hkdf(name: str, master: bytes, key_len: int, num_keys: int, salt: Any, context: Any, theirs: bool) -> None:
    ours_mod, py_mod = _mods(name)
    want = PyKDF.HKDF(master, key_len, salt, py_mod, num_keys, context)
    assert KDF.HKDF(master, key_len, salt, py_mod if theirs else ours_mod, num_keys, context) == want


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha512"])
@given(
    master=secrets,
    key_len=st.integers(0, 70),
    num_keys=st.one_of(st.none(), st.integers(1, 3)),
    label=st.binary(max_size=20).filter(lambda b: b"\0" not in b),
    context=st.binary(max_size=20),
)
def test_sp800_108_counter(name: str, master: bytes, key_len: int, num_keys: Any, label: bytes, context: bytes) -> None:
    ours_mod, py_mod = _mods(name)
    want = _outcome(
        lambda: PyKDF.SP800_108_Counter(
            master, key_len, lambda s, x: PyHMAC.new(s, x, py_mod).digest(), num_keys, label, context
        )
    )
    got = _outcome(
        lambda: KDF.SP800_108_Counter(
            master, key_len, lambda s, x: HMAC.new(s, x, ours_mod).digest(), num_keys, label, context
        )
    )
    assert got == want  # key_len=0 with num_keys>1 fails in both the same way (range() step 0)


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except ValueError as e:
        return (type(e).__name__, str(e))
