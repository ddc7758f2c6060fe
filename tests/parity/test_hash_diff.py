"""Differential property tests: kernel hash objects against the stdlib (PyCryptodome for MD4) on random data,
random update chunkings (empty chunks included), copy() and digest() at random points, update after digest."""

from __future__ import annotations

import errno
import hashlib
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kcapi_hashlib
import kcapi_hashlib._hashes  # binds the submodule: the package imports private modules lazily
from tests.support import requires


def _reference(name: str, **kw: Any) -> Callable[[], Any] | None:
    try:
        hashlib.new(name)
    except ValueError:
        if name == "md4":
            from Crypto.Hash import MD4

            return MD4.new
        return None
    if name in ("blake2b", "blake2s"):
        return lambda: getattr(hashlib, name)(**kw)
    return lambda: hashlib.new(name)


KNOWN_ABSENT = {"blake2s", "sm3"}
ALGORITHMS = sorted(n for n in kcapi_hashlib._hashes.ALGORITHMS if kcapi_hashlib._hashes.ALGORITHMS[n].kernel)

pytestmark = [
    requires.hashes("name", only="test_programs"),
    requires.hash_names(
        "md5",
        "sha1",
        "sha256",
        "sha512",
        "sha3_256",
        "blake2b",
        only="test_every_kernel_algorithm_is_checked_somewhere",
    ),
    requires.hash_names("blake2b", only="test_blake2b_sizes_and_keys"),
    requires.hash_names("sha1", only="test_buffer_types"),
    requires.hash_names("sha256", only="test_initial_data_equals_update"),
    requires.hash_names("sha256", only="test_mutating_the_buffer_after_update_does_not_change_the_digest"),
    requires.hash_names("sha256", only="test_wide_items_are_hashed_as_bytes"),
]


def test_every_kernel_algorithm_is_checked_somewhere() -> None:
    """What this kernel binds, minus what has a reference here, is only what vectors alone cover."""
    available = kcapi_hashlib.algorithms_available
    assert {"md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b"} <= available
    without_reference = {n for n in available if _reference(n) is None}
    assert without_reference <= {"whirlpool", "streebog256", "streebog512"}


# One "program" step: ("update", data) | ("digest",) | ("copy",) (continue on the copy; the original is checked)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.binary(max_size=300)),
        st.tuples(st.just("update"), st.integers(min_value=60_000, max_value=140_000)),  # crosses the buffer
        st.tuples(st.just("digest")),
        st.tuples(st.just("copy")),
    ),
    max_size=12,
)


def _run(ours: Any, ref: Any, program: list[tuple[Any, ...]]) -> None:
    for step in program:
        if step[0] == "update":
            data = step[1] if isinstance(step[1], bytes) else bytes([len(program) % 251]) * step[1]
            ours.update(data)
            ref.update(data)
        elif step[0] == "digest":
            assert ours.digest() == ref.digest()
            assert ours.hexdigest() == ref.hexdigest()
        else:
            old_ours, old_ref = ours, ref
            ours, ref = ours.copy(), ref.copy()
            assert old_ours.digest() == old_ref.digest()
            old_ours.update(b"diverge")  # the copy must not see this
    assert ours.digest() == ref.digest()
    assert ours.digest() == ref.digest()  # digest() never finalizes


@pytest.mark.parametrize("name", ALGORITHMS)
@given(program=steps)
def test_programs(name: str, program: list[tuple[Any, ...]]) -> None:
    if name not in kcapi_hashlib.algorithms_available:
        # Debian's UML kernels have no sm3 and no blake2s shash (lib-only since 5.19): the bind says ENOENT.
        reason = kcapi_hashlib._afalg.probe("hash", kcapi_hashlib._hashes.ALGORITHMS[name].kernel or "")
        assert name in KNOWN_ABSENT and reason is not None and reason.errno == errno.ENOENT, reason
        return
    ref_ctor = _reference(name)
    if ref_ctor is None:
        return  # whirlpool/streebog: vectors only (asserted by test_every_kernel_algorithm_is_checked_somewhere)
    _run(kcapi_hashlib.new(name), ref_ctor(), program)


@given(
    digest_size=st.sampled_from([20, 32, 48, 64]),
    key=st.binary(max_size=64),
    program=steps,
)
def test_blake2b_sizes_and_keys(digest_size: int, key: bytes, program: list[tuple[Any, ...]]) -> None:
    ours = kcapi_hashlib.blake2b(digest_size=digest_size, key=key)
    assert isinstance(ours, kcapi_hashlib.HASH)
    ref = hashlib.blake2b(digest_size=digest_size, key=key)
    assert (ours.name, ours.digest_size, ours.block_size) == (ref.name, ref.digest_size, ref.block_size)
    _run(ours, ref, program)


@given(data=st.binary(max_size=2000), cut=st.integers(min_value=0, max_value=2000))
def test_initial_data_equals_update(data: bytes, cut: int) -> None:
    a = kcapi_hashlib.sha256(data[:cut])
    a.update(data[cut:])
    assert a.digest() == kcapi_hashlib.new("sha256", data).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    "make",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: memoryview(bytearray(b)).cast("B"),
        lambda b: __import__("array").array("B", b),
    ],
    ids=["bytes", "bytearray", "memoryview", "memoryview-of-bytearray", "array"],
)
def test_buffer_types(make: Callable[[bytes], Any]) -> None:
    data = bytes(range(256)) * 3
    assert kcapi_hashlib.sha1(make(data)).digest() == hashlib.sha1(data).digest()
    h = kcapi_hashlib.sha1()
    h.update(make(data))
    assert h.digest() == hashlib.sha1(data).digest()


def test_mutating_the_buffer_after_update_does_not_change_the_digest() -> None:
    buf = bytearray(b"x" * 100)
    h = kcapi_hashlib.sha256(buf)
    buf[:] = b"y" * 100
    assert h.digest() == hashlib.sha256(b"x" * 100).digest()


def test_wide_items_are_hashed_as_bytes() -> None:
    import array

    a = array.array("I", range(1000))
    assert kcapi_hashlib.sha256(a).digest() == hashlib.sha256(a).digest()
