"""Differential property tests of HMAC: kcapi_hashlib.hmac against the stdlib hmac, kcapi_hashlib.Hash.HMAC
against PyCryptodome's, on keys of every length class (0, < block, = block, > block, > the setsockopt limit),
random update chunkings, copy() and digest() at random points and update after digest."""

from __future__ import annotations

import errno
import hmac as std_hmac
import importlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kcapi_hashlib
from kcapi_hashlib import _afalg, _hashes
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib.Hash import HMAC as KHMAC
from tests.support import requires

NAMES = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
         "blake2b", "ripemd160"]  # fmt: skip
_BLOCK = {name: kcapi_hashlib._hashes.ALGORITHMS[name].block_size for name in NAMES}  # no kernel call at import

# hmac(<hash>) per name (blake2b: hmac(blake2b-512) is ENOENT where the kernel has blake2b, so the test runs
# and checks the RFC 2104 construction over kernel hashes; refused by af_alg_restrict alike)
pytestmark = [requires.hmacs("name"), requires.hash_names("sha256", only="test_custom_digestmod_*")]


@st.composite
def keys(draw: Any, name: str) -> bytes:
    block = _BLOCK[name]
    size = draw(
        st.one_of(
            st.just(0),
            st.integers(1, block - 1),
            st.just(block),
            st.integers(block + 1, 3 * block),
            st.integers(4097, 6000),  # hashed before setsockopt
        )
    )
    return draw(st.binary(min_size=size, max_size=size))


steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.binary(max_size=200)),
        st.tuples(st.just("update"), st.integers(min_value=60_000, max_value=100_000)),  # streams to the kernel
        st.tuples(st.just("digest")),
        st.tuples(st.just("copy")),
    ),
    max_size=8,
)


def _data(arg: Any) -> bytes:
    return arg if isinstance(arg, bytes) else bytes([arg & 0xFF]) * arg


def _run(ours: Any, ref: Any, program: list[tuple[Any, ...]]) -> None:
    for step in program:
        if step[0] == "update":
            data = _data(step[1])
            ours.update(data)
            ref.update(data)
        elif step[0] == "digest":
            assert ours.digest() == ref.digest()
        else:
            old_ours, old_ref = ours, ref
            ours, ref = ours.copy(), ref.copy()
            assert old_ours.digest() == old_ref.digest()
    assert ours.digest() == ref.digest()
    assert ours.hexdigest() == ref.hexdigest()


def _run_refusing_update_after_digest(ours: Any, ref: Any, program: list[tuple[Any, ...]]) -> None:
    for step in program:
        if step[0] == "update":
            data = _data(step[1])
            outcomes = []
            for h in (ours, ref):
                try:
                    h.update(data)
                    outcomes.append(None)
                except TypeError as e:
                    outcomes.append(str(e))
            assert outcomes[0] == outcomes[1]
        elif step[0] == "digest":
            assert ours.digest() == ref.digest()
        else:
            ours, ref = ours.copy(), ref.copy()
    assert ours.hexdigest() == ref.hexdigest()


def _assert_kernel_computed(ours: Any, name: str) -> None:
    """By the kernel's hmac(<hash>), or, where this kernel has no hmac() over that hash (7.2 binds
    blake2b-512 but not hmac(blake2b-512): ENOENT), RFC 2104 over two kernel hash objects."""
    if ours._hmac is not None:
        return
    why = _afalg.probe("hash", f"hmac({_hashes.ALGORITHMS[name].kernel})")
    assert why is not None and why.errno == errno.ENOENT, why
    assert isinstance(ours._inner, kcapi_hashlib.HASH) and isinstance(ours._outer, kcapi_hashlib.HASH)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data(), program=steps, msg=st.one_of(st.none(), st.binary(max_size=100)))
def test_stdlib_hmac(name: str, data: Any, program: list[tuple[Any, ...]], msg: Any) -> None:
    key = data.draw(keys(name))
    ours = khmac.new(key, msg, name)
    _assert_kernel_computed(ours, name)
    ref = std_hmac.new(key, msg, name)
    assert (ours.name, ours.digest_size, ours.block_size) == (ref.name, ref.digest_size, ref.block_size)
    _run(ours, ref, program)


@pytest.mark.parametrize("name", ["sha256", "sha512", "sha3_256"])
@given(data=st.data(), msg=st.binary(max_size=3000))
def test_stdlib_digest_function(name: str, data: Any, msg: bytes) -> None:
    key = data.draw(keys(name))
    assert khmac.digest(key, msg, name) == std_hmac.digest(key, msg, name)
    assert khmac.digest(bytearray(key), memoryview(msg), name) == std_hmac.digest(key, msg, name)


_PY_MODULES = {"md5": "MD5", "sha1": "SHA1", "sha224": "SHA224", "sha256": "SHA256", "sha384": "SHA384",
               "sha512": "SHA512", "sha3_256": "SHA3_256", "sha3_512": "SHA3_512",
               "ripemd160": "RIPEMD160"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_PY_MODULES))
@given(data=st.data(), program=steps, msg=st.binary(max_size=100), theirs_module=st.booleans())
def test_pycryptodome_hmac(
    name: str, data: Any, program: list[tuple[Any, ...]], msg: bytes, theirs_module: bool
) -> None:
    key = data.draw(keys(name))
    py_mod = importlib.import_module(f"Crypto.Hash.{_PY_MODULES[name]}")
    our_mod = importlib.import_module(f"kcapi_hashlib.Hash.{_PY_MODULES[name]}")
    from Crypto.Hash import HMAC as PyHMAC

    ours = KHMAC.new(key, msg, py_mod if theirs_module else our_mod)
    ref = PyHMAC.new(key, msg, py_mod)
    assert ours.digest_size == ref.digest_size
    assert getattr(ours, "oid", None) == getattr(ref, "oid", None)
    if name.startswith("sha3_"):  # PyCryptodome's HMAC-SHA3 refuses update() after digest(): so does ours
        _run_refusing_update_after_digest(ours, ref, program)
        return
    _run(ours, ref, program)
    ours.verify(ref.digest())
    ours.hexverify(ref.hexdigest())


@given(msg=st.binary(max_size=500), key=st.binary(max_size=200))
def test_custom_digestmod_uses_the_rfc2104_construction(msg: bytes, key: bytes) -> None:
    class MyHash:  # a digestmod nobody can identify: RFC 2104 is built over it, as the stdlib does
        digest_size = 32
        block_size = 64
        name = "mine"

        def __init__(self, data: bytes = b"") -> None:
            self._h = kcapi_hashlib.sha256(data)

        def update(self, data: bytes) -> None:
            self._h.update(data)

        def digest(self) -> bytes:
            return self._h.digest()  # type: ignore[no-any-return]

        def hexdigest(self) -> str:
            return self.digest().hex()

        def copy(self) -> MyHash:
            other = MyHash()
            other._h = self._h.copy()
            return other

    h = khmac.new(key, msg, MyHash)
    assert h._hmac is None and h.name == "hmac-mine"
    assert h.digest() == std_hmac.new(key, msg, "sha256").digest()
