"""Differential property tests of the AEAD modes against PyCryptodome: random keys of every size, nonces of
every allowed length, AAD and data split at random across update()/encrypt()/decrypt() calls, output=
buffers, every tag length; and the one-shot/streaming boundary (messages around 192 KiB)."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Optional

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import ChaCha20_Poly1305 as RefCP
from hypothesis import given
from hypothesis import strategies as st

from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305
from tests.support import requires

data = st.binary(max_size=600)
aes_keys = st.sampled_from((16, 24, 32)).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def _pieces(draw: Any, blob: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(blob)), max_size=4)))
    edges = [0, *cuts, len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(edges)]


def _encrypt(obj: Any, aad: list[bytes], pt: list[bytes], out: bool) -> tuple[bytes, bytes]:
    for a in aad:
        obj.update(a)
    chunks = []
    for p in pt:
        if out:
            buf = bytearray(len(p))
            assert obj.encrypt(p, output=buf) is None
            chunks.append(bytes(buf))
        else:
            chunks.append(obj.encrypt(p))
    return b"".join(chunks), obj.digest()


def _decrypt(obj: Any, aad: list[bytes], ct: list[bytes], tag: bytes, out: bool) -> bytes:
    for a in aad:
        obj.update(a)
    chunks = []
    for c in ct:
        if out:
            buf = bytearray(len(c))
            obj.decrypt(c, output=memoryview(buf))
            chunks.append(bytes(buf))
        else:
            chunks.append(obj.decrypt(c))
    obj.verify(tag)
    return b"".join(chunks)


def _check(ours: Callable[[], Any], ref: Callable[[], Any], aad: list[bytes], pt: list[bytes], out: bool) -> None:
    want_ct, want_tag = _encrypt(ref(), aad, pt, False)
    before = _afalg.kernel_operations()
    ct, tag = _encrypt(ours(), aad, pt, out)
    assert (ct, tag) == (want_ct, want_tag)
    # decrypt with the ciphertext split like the plaintext was
    sizes = [len(p) for p in pt]
    pieces, pos = [], 0
    for n in sizes:
        pieces.append(ct[pos : pos + n])
        pos += n
    assert _decrypt(ours(), aad, pieces, tag, out) == b"".join(pt)
    # one-shot decrypt_and_verify, good and bad tag
    d = ours()
    for a in aad:
        d.update(a)
    assert d.decrypt_and_verify(ct, tag) == b"".join(pt)
    d = ours()
    for a in aad:
        d.update(a)
    with pytest.raises(ValueError, match="MAC check failed"):
        d.decrypt_and_verify(ct, bytes([tag[0] ^ 0x80]) + tag[1:])
    assert _afalg.kernel_operations() > before


@st.composite
def _gcm_case(draw: Any) -> tuple[Any, ...]:
    key = draw(aes_keys)
    nonce = draw(st.one_of(st.binary(min_size=12, max_size=12), st.binary(min_size=1, max_size=40)))
    mac_len = draw(st.integers(4, 16))
    return key, nonce, mac_len, _pieces(draw, draw(data)), _pieces(draw, draw(data)), draw(st.booleans())


# what each mode of test_large_and_switching binds: the AEAD, and the keystream of the streaming path (GCM and
# CCM on ctr(aes), CCM's CBC-MAC on cbc(aes), ChaCha20-Poly1305 on chacha20). xchachapoly needs xchacha20 and
# checks the refusal itself where the kernel has no poly1305 (Debian's 7.3).
_LARGE = {
    "gcm": {"aead": "gcm(aes)", "skcipher": "ctr(aes)"},
    "gcm-nonce16": {"aead": "gcm(aes)", "skcipher": "ctr(aes)"},
    "ccm": {"aead": "ccm(aes)", "skcipher": ("ctr(aes)", "cbc(aes)")},
    "chachapoly": {"aead": "rfc7539(chacha20,poly1305)", "skcipher": "chacha20"},
    "xchachapoly": {"skcipher": "xchacha20"},
}
pytestmark = [
    *requires.cipher_code("AES.MODE_GCM", only="test_gcm"),
    *requires.cipher_code("AES.MODE_CCM AES.MODE_CBC", only="test_ccm"),
    *requires.cipher_code("ChaCha20_Poly1305", only="test_chacha20_poly1305"),
    *(
        requires.kernel_alg(
            t, from_param="mode", kernel=lambda m, t=t: _LARGE[m].get(t), only="test_large_and_switching"
        )
        for t in ("aead", "skcipher")
    ),
]


@given(_gcm_case())
def test_gcm(case: tuple[Any, ...]) -> None:
    key, nonce, mac_len, aad, pt, out = case
    _check(
        lambda: AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=mac_len),
        lambda: RefAES.new(key, RefAES.MODE_GCM, nonce=nonce, mac_len=mac_len),
        aad,
        pt,
        out,
    )


@st.composite
def _ccm_case(draw: Any) -> tuple[Any, ...]:
    key = draw(aes_keys)
    nonce = draw(st.integers(7, 13).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
    mac_len = draw(st.sampled_from((4, 6, 8, 10, 12, 14, 16)))
    aad, pt = draw(data), draw(data)
    declare = draw(st.booleans())
    pieces = _pieces(draw, pt) if declare else [pt]
    return key, nonce, mac_len, _pieces(draw, aad), pieces, declare, draw(st.booleans())


@given(_ccm_case())
def test_ccm(case: tuple[Any, ...]) -> None:
    key, nonce, mac_len, aad, pt, declare, out = case
    extra = dict(msg_len=sum(map(len, pt)), assoc_len=sum(map(len, aad))) if declare else {}
    _check(
        lambda: AES.new(key, AES.MODE_CCM, nonce=nonce, mac_len=mac_len, **extra),
        lambda: RefAES.new(key, RefAES.MODE_CCM, nonce=nonce, mac_len=mac_len, **extra),
        aad,
        pt,
        out,
    )


def _xchacha_ok() -> bool:
    return _afalg.probe("hash", "poly1305") is None


@st.composite
def _cp_case(draw: Any) -> tuple[Any, ...]:
    key = draw(st.binary(min_size=32, max_size=32))
    lengths = (8, 12, 24) if _xchacha_ok() else (8, 12)
    nonce = draw(st.sampled_from(lengths).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
    return key, nonce, _pieces(draw, draw(data)), _pieces(draw, draw(data)), draw(st.booleans())


@given(_cp_case())
def test_chacha20_poly1305(case: tuple[Any, ...]) -> None:
    key, nonce, aad, pt, out = case
    _check(
        lambda: ChaCha20_Poly1305.new(key=key, nonce=nonce),
        lambda: RefCP.new(key=key, nonce=nonce),
        aad,
        pt,
        out,
    )


# Around the one-shot limit (192 KiB): buffered below, streaming (kernel MAC) above, and the switch from
# one to the other in the middle of a message.
BIG = (190 * 1024, 192 * 1024 - 16, 200 * 1024, 300 * 1024 + 5)


@pytest.mark.parametrize("size", BIG)
@pytest.mark.parametrize("mode", ("gcm", "gcm-nonce16", "ccm", "chachapoly", "xchachapoly"))
def test_large_and_switching(mode: str, size: int) -> None:
    import os

    key32 = os.urandom(32)
    aad = [os.urandom(100)]
    pt = os.urandom(size)
    pieces = [pt[:1000], pt[1000 : size // 2], pt[size // 2 :]]
    make: Callable[[], Any]
    ref: Callable[[], Any]
    extra: dict[str, Optional[int]] = {}
    if mode.startswith("gcm"):
        nonce = os.urandom(12 if mode == "gcm" else 16)
        make = lambda: AES.new(key32, AES.MODE_GCM, nonce=nonce, mac_len=12)  # noqa: E731
        ref = lambda: RefAES.new(key32, RefAES.MODE_GCM, nonce=nonce, mac_len=12)  # noqa: E731
    elif mode == "ccm":
        nonce = os.urandom(11)
        extra = dict(msg_len=size, assoc_len=100)
        make = lambda: AES.new(key32, AES.MODE_CCM, nonce=nonce, **extra)  # noqa: E731
        ref = lambda: RefAES.new(key32, RefAES.MODE_CCM, nonce=nonce, **extra)  # noqa: E731
    else:
        if mode == "xchachapoly" and not _xchacha_ok():
            with pytest.raises(ValueError, match="unsupported cipher type"):
                ChaCha20_Poly1305.new(key=key32, nonce=os.urandom(24))
            return
        nonce = os.urandom(24 if mode == "xchachapoly" else 12)
        make = lambda: ChaCha20_Poly1305.new(key=key32, nonce=nonce)  # noqa: E731
        ref = lambda: RefCP.new(key=key32, nonce=nonce)  # noqa: E731
    _check(make, ref, aad, pieces, False)
    _check(make, ref, aad, [pt], True)
