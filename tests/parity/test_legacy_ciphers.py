"""The legacy ciphers served from the kernel: DES (des), Blowfish (blowfish), CAST-128 (cast5) and
ARC4 (ecb(arc4)) against PyCryptodome, and ARC4's key stream under threads, fork and interrupts.

Where this kernel cannot bind one of them (Debian's 7.3 builds no ecb(arc4); af_alg_restrict refuses
blowfish and cast5), the tests of that cipher check the policy instead (strict raises, fallback computes
PyCryptodome's answer, counted): what a user of this kernel gets. Nothing is skipped silently.
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from typing import Any, Callable

import pytest
from Crypto.Cipher import ARC4 as RefARC4
from Crypto.Cipher import CAST as RefCAST
from Crypto.Cipher import DES as RefDES
from Crypto.Cipher import Blowfish as RefBlowfish
from hypothesis import given, settings
from hypothesis import strategies as st

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import ARC4, CAST, DES, Blowfish, InterruptedCipherError
from tests.parity.test_cipher_diff import _both_ways, splits

BLOCK = {"DES": (DES, RefDES, "des", (8,)), "Blowfish": (Blowfish, RefBlowfish, "blowfish", (4, 5, 16, 55, 56)),
         "CAST": (CAST, RefCAST, "cast5", (5, 10, 11, 16))}  # fmt: skip
MODES = ("ECB", "CBC", "CTR", "CFB8", "CFB64", "OFB")
# the kernel skcipher each mode binds (CFB and OFB are composed from ecb/cbc: see _mode_cfb.py, _mode_ofb.py)
KERNEL_MODE = {"ECB": ("ecb",), "CBC": ("cbc",), "CTR": ("ctr",), "CFB8": ("ecb", "cbc"), "CFB64": ("ecb", "cbc"),
               "OFB": ("cbc",)}  # fmt: skip


def _missing(*names: str) -> list[str]:
    return [n for n in names if _afalg.probe("skcipher", n) is not None]


def _ops() -> int:
    s = _afalg.stats()
    return s["send"] + s["recv"]


def _maker(module: Any, key: bytes, mode: str, iv: bytes, nonce: bytes) -> Callable[[], Any]:
    if mode == "ECB":
        return lambda: module.new(key, module.MODE_ECB)
    if mode == "CBC":
        return lambda: module.new(key, module.MODE_CBC, iv)
    if mode == "CTR":
        return lambda: module.new(key, module.MODE_CTR, nonce=nonce)
    if mode == "OFB":
        return lambda: module.new(key, module.MODE_OFB, iv)
    return lambda: module.new(key, module.MODE_CFB, iv, segment_size=int(mode[3:]))


def _policy_path(make: Callable[[], Any], ref: Callable[[], Any], name: str, data: bytes) -> None:
    """Where the kernel lacks the cipher: strict raises naming it; fallback is PyCryptodome's, counted."""
    previous = kcapi_hashlib.set_policy("strict")
    try:
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match=f"unsupported cipher type {name}"):
            make()
        kcapi_hashlib.set_policy("fallback")
        kcapi_hashlib.reset_fallback_counts()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
            assert make().encrypt(data) == ref().encrypt(data)
        assert sum(kcapi_hashlib.fallback_counts().values()) >= 1
    finally:
        kcapi_hashlib.set_policy(previous)
        kcapi_hashlib.reset_fallback_counts()


@pytest.mark.parametrize("cipher", sorted(BLOCK))
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=30, deadline=None)
@given(st_data=st.data(), how=st.sampled_from(("return", "bytearray", "memoryview", "in-place")))
def test_block_cipher_against_pycryptodome(cipher: str, mode: str, st_data: st.DataObject, how: str) -> None:
    ours, ref, kernel, sizes = BLOCK[cipher]
    size = st_data.draw(st.sampled_from(sizes))
    key = st_data.draw(st.binary(min_size=size, max_size=size))
    iv = st_data.draw(st.binary(min_size=8, max_size=8))
    nonce = st_data.draw(st.binary(max_size=7))
    data = st_data.draw(st.binary(max_size=300))
    whole = mode in ("ECB", "CBC")
    if whole:
        data = data[: len(data) // 8 * 8]
    if mode == "CTR":
        data = data[: 8 * (1 << (8 * (8 - len(nonce))))]
    pieces = st_data.draw(splits(data, 8 if whole else 1))
    make, make_ref = _maker(ours, key, mode, iv, nonce), _maker(ref, key, mode, iv, nonce)
    missing = _missing(*(f"{m}({kernel})" for m in KERNEL_MODE[mode]))
    if missing:
        _policy_path(make, make_ref, f"{cipher}", data)
        return
    _both_ways(make, make_ref, data, pieces, how)


@pytest.mark.parametrize("cipher", sorted(BLOCK))
def test_block_cipher_key_errors_are_pycryptodome_s(cipher: str) -> None:
    ours, ref, _, sizes = BLOCK[cipher]
    for bad in (b"", bytes(min(sizes) - 1), bytes(max(sizes) + 1)):
        with pytest.raises(ValueError) as e_ref:
            ref.new(bad, ref.MODE_ECB)
        with pytest.raises(ValueError) as e_ours:
            ours.new(bad, ours.MODE_ECB)
        assert str(e_ours.value) == str(e_ref.value)
    text = "x" * max(sizes)
    with pytest.raises(TypeError) as t_ref:
        ref.new(text, ref.MODE_ECB)
    with pytest.raises(TypeError) as t_ours:
        ours.new(text, ours.MODE_ECB)
    assert str(t_ours.value) == str(t_ref.value)
    assert (ours.block_size, list(ours.key_size) if cipher != "DES" else ours.key_size) == (
        ref.block_size,
        list(ref.key_size) if cipher != "DES" else ref.key_size,
    )


# --- ARC4 --------------------------------------------------------------------------------------------------

HAVE_ARC4 = not _missing("ecb(arc4)")


def _ref_stream(key: bytes, drop: int, n: int) -> bytes:
    return RefARC4.new(key, drop).encrypt(bytes(n))


@settings(max_examples=60, deadline=None)
@given(
    key=st.integers(1, 256).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    drop=st.sampled_from((0, 1, 768, 3072)),
    data=st.binary(max_size=3000),
    st_data=st.data(),
)
def test_arc4_against_pycryptodome(key: bytes, drop: int, data: bytes, st_data: st.DataObject) -> None:
    if not HAVE_ARC4:
        _policy_path(lambda: ARC4.new(key, drop), lambda: RefARC4.new(key, drop), "ARC4", data)
        return
    pieces = st_data.draw(splits(data))
    before = _ops()
    expected = RefARC4.new(key, drop).encrypt(data)
    c = ARC4.new(key, drop=drop)
    # encrypt and decrypt are one operation continuing one stream, as in PyCryptodome
    got = b"".join((c.encrypt if i % 2 else c.decrypt)(p) for i, p in enumerate(pieces))
    assert got == expected
    if data or drop:
        assert _ops() > before
    assert (c.block_size, c.key_size) == (1, len(key))


@pytest.fixture
def arc4_policy() -> Any:
    """Where this kernel has no ecb(arc4), the fallback policy (ARC4.new then returns PyCryptodome's object, so
    these error tests check that path); else nothing changes."""
    if HAVE_ARC4:
        yield
        return
    previous = kcapi_hashlib.set_policy("fallback")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
            yield
    finally:
        kcapi_hashlib.set_policy(previous)
        kcapi_hashlib.reset_fallback_counts()


def test_arc4_errors_are_pycryptodome_s(arc4_policy: None) -> None:
    for bad in (b"", bytes(257)):
        with pytest.raises(ValueError) as e_ref:
            RefARC4.new(bad)
        with pytest.raises(ValueError) as e_ours:
            ARC4.new(bad)
        assert str(e_ours.value) == str(e_ref.value)
    for data in (12, "text", [1, 2]):
        with pytest.raises(TypeError) as t_ref:
            RefARC4.new(b"key").encrypt(data)  # type: ignore[arg-type]
        with pytest.raises(TypeError) as t_ours:
            ARC4.new(b"key").encrypt(data)  # type: ignore[arg-type]
        assert str(t_ours.value) == str(t_ref.value)
    with pytest.raises(TypeError) as k_ref:
        RefARC4.new("a str key")  # type: ignore[arg-type]
    with pytest.raises(TypeError) as k_ours:
        ARC4.new("a str key")  # type: ignore[arg-type]
    assert str(k_ours.value) == str(k_ref.value)


def test_arc4_every_bytes_like_type(arc4_policy: None) -> None:
    import array

    key = b"bytes-like key"
    for data in (b"abcdefgh", bytearray(b"abcdefgh"), memoryview(b"xabcdefghx")[1:-1]):
        assert ARC4.new(key).encrypt(data) == RefARC4.new(key).encrypt(data)
    multi = memoryview(array.array("I", range(4)))
    for mod in (ARC4, RefARC4):
        with pytest.raises(ValueError, match="changed length"):
            mod.new(key).encrypt(multi)
    c = ARC4.new(key)
    with pytest.raises(ValueError):
        c.encrypt(multi)
    assert c.encrypt(b"next") == RefARC4.new(key).encrypt(b"next")  # nothing consumed by the refused call


needs_arc4 = pytest.mark.skipif(not HAVE_ARC4, reason="this kernel cannot bind ecb(arc4): the policy path is tested")


@needs_arc4
def test_arc4_objects_with_the_same_key_never_share_a_key_stream() -> None:
    key = b"same key"
    ref = _ref_stream(key, 0, 300)
    a, b = ARC4.new(key), ARC4.new(key)
    assert a.encrypt(bytes(100)) == ref[:100]
    assert b.encrypt(bytes(100)) == ref[:100]  # its own stream from the start, not a's continuation
    assert a.encrypt(bytes(200)) == ref[100:300]
    big = bytes(300_000)  # several socket-limit messages in one call
    assert ARC4.new(key).encrypt(big) == RefARC4.new(key).encrypt(big)


@needs_arc4
def test_arc4_threads_sharing_one_object_use_each_key_stream_byte_once() -> None:
    key = bytes(range(16))
    sizes = [1 + (i * 37) % 900 + 32 for i in range(8 * 40)]
    total = sum(sizes)
    ref = _ref_stream(key, 0, total)
    c = ARC4.new(key)
    outs: list[bytes] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for n in sizes[i::8]:
            out = c.encrypt(bytes(n))
            with lock:
                outs.append(out)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    # every output is a piece of the one key stream; together they cover it exactly once
    spans = sorted((ref.find(o), len(o)) for o in outs)
    assert all(start >= 0 for start, _ in spans)
    pos = 0
    for start, n in spans:
        assert start == pos, "key stream reused or skipped"
        pos += n
    assert pos == total


@needs_arc4
def test_arc4_forked_child_continues_its_own_copy() -> None:
    key = b"fork key"
    ref = _ref_stream(key, 0, 3000)
    c = ARC4.new(key)
    assert c.encrypt(bytes(1000)) == ref[:1000]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, c.encrypt(bytes(1000)) + c.encrypt(bytes(500)))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        child = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert child == ref[1000:2500]  # as PyCryptodome's copied state would give
    assert c.encrypt(bytes(2000)) == ref[1000:3000]  # the parent's kernel stream was not touched by the child


class _Interrupt(Exception):
    pass


@needs_arc4
def test_arc4_interrupted_call_makes_the_object_refuse_later_calls() -> None:
    """An exception from a signal handler inside encrypt(): the kernel's stream position is then unknown, so
    the object refuses every later call rather than return out-of-step key stream."""

    def handler(signum: int, frame: object) -> None:
        raise _Interrupt

    key = b"interrupt key"
    data = bytes(8 << 20)
    old = signal.signal(signal.SIGALRM, handler)
    try:
        for attempt in range(200):
            c = ARC4.new(key)
            signal.setitimer(signal.ITIMER_REAL, 0.0005 + attempt * 0.0005)
            try:
                c.encrypt(data)
                signal.setitimer(signal.ITIMER_REAL, 0)
            except _Interrupt:
                signal.setitimer(signal.ITIMER_REAL, 0)
                if c._broken is None:
                    # landed before the call started, or after its stream was whole again: the object goes on
                    # from where the kernel's stream is (what the call consumed stays consumed, as in CTR)
                    at = c._stream.position
                    assert at in (0, len(data))
                    assert c.encrypt(bytes(16)) == _ref_stream(key, 0, at + 16)[at:]
                    continue
                with pytest.raises(InterruptedCipherError):
                    c.encrypt(b"more")
                with pytest.raises(InterruptedCipherError):
                    c.decrypt(b"more")
                return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    pytest.fail("no encrypt() was interrupted part-way in 200 attempts")
