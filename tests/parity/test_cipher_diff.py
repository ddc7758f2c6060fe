"""Differential property tests: kcapi_hashlib's ciphers against PyCryptodome for every mode.

Random keys (every valid size), IVs, nonces (every length PyCryptodome allows), counters, data, random splits
of the data across encrypt()/decrypt() calls (any byte boundary for the stream modes, whole blocks for
ECB/CBC), and output= buffers (bytearray, memoryview, in place). The kernel must do the work: every test
checks that AF_ALG operations were made.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import DES3 as RefDES3
from Crypto.Cipher import ChaCha20 as RefChaCha20
from Crypto.Util import Counter
from hypothesis import given
from hypothesis import strategies as st

from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES, DES3, ChaCha20
from tests.kernel.test_cipher_vectors import reference_xts
from tests.support import requires


def _ops() -> int:
    s = _afalg.stats()
    return s["send"] + s["recv"]


@st.composite
def splits(draw: st.DrawFn, data: bytes, unit: int = 1) -> list[bytes]:
    """data cut at random multiples of `unit` (empty pieces included)."""
    units = len(data) // unit
    cuts = sorted(draw(st.lists(st.integers(0, units), max_size=5)))
    out, prev = [], 0
    for c in [*cuts, units]:
        out.append(data[prev * unit : c * unit])
        prev = c
    return out


OUTPUTS = ("return", "bytearray", "memoryview", "in-place")

pytestmark = [
    *requires.cipher_code("AES.MODE_ECB", only="test_ecb"),
    *requires.cipher_code("AES.MODE_CBC", only="test_cbc"),
    *requires.cipher_code("AES.MODE_CTR AES.MODE_ECB", only="test_ctr_*"),  # counter blocks: ecb (_mode_ctr.py)
    *requires.cipher_code("AES.MODE_CFB", only="test_cfb"),
    *requires.cipher_code("AES.MODE_OFB", only="test_ofb"),
    *requires.cipher_code("AES.MODE_XTS", only="test_xts"),
    # hypothesis draws ECB, CBC, CTR, CFB, OFB
    *requires.cipher_code("DES3.MODE_ECB DES3.MODE_CBC DES3.MODE_CTR", only="test_des3"),
    requires.kernel_alg("skcipher", ("chacha20", "xchacha20"), only="test_chacha20"),  # nonces of 8, 12, 24
    requires.kernel_alg("skcipher", "chacha20", only="test_chacha20_64bit_counter_carry"),
]


def _call(method: Callable[..., Any], piece: bytes, how: str) -> bytes:
    if how == "return":
        out = method(piece)
        assert isinstance(out, bytes)
        return out
    if how == "in-place":
        buf = bytearray(piece)
        assert method(buf, output=buf) is None
        return bytes(buf)
    target = bytearray(len(piece))
    assert method(piece, output=target if how == "bytearray" else memoryview(target)) is None
    return bytes(target)


def _both_ways(ours: Callable[[], Any], ref: Callable[[], Any], data: bytes, pieces: list[bytes], how: str) -> None:
    before = _ops()
    expected = ref().encrypt(data)
    enc = ours()
    got = b"".join(_call(enc.encrypt, p, how) for p in pieces)
    assert got == expected
    # Decrypt the reference's ciphertext with the same split.
    cuts = [len(p) for p in pieces]
    ct_pieces, pos = [], 0
    for n in cuts:
        ct_pieces.append(expected[pos : pos + n])
        pos += n
    dec = ours()
    assert b"".join(_call(dec.decrypt, p, how) for p in ct_pieces) == data
    if data:
        assert _ops() > before


keys_aes = st.sampled_from((16, 24, 32)).flatmap(lambda n: st.binary(min_size=n, max_size=n))
data_any = st.binary(max_size=1500)
outputs = st.sampled_from(OUTPUTS)


@given(
    key=keys_aes, data=st.binary(max_size=1024).map(lambda d: d[: len(d) // 16 * 16]), how=outputs, st_data=st.data()
)
def test_ecb(key: bytes, data: bytes, how: str, st_data: st.DataObject) -> None:
    pieces = st_data.draw(splits(data, 16))
    _both_ways(lambda: AES.new(key, AES.MODE_ECB), lambda: RefAES.new(key, RefAES.MODE_ECB), data, pieces, how)


@given(
    key=keys_aes, iv=st.binary(min_size=16, max_size=16), data=st.binary(max_size=1024), how=outputs, st_data=st.data()
)
def test_cbc(key: bytes, iv: bytes, data: bytes, how: str, st_data: st.DataObject) -> None:
    data = data[: len(data) // 16 * 16]
    pieces = st_data.draw(splits(data, 16))
    _both_ways(lambda: AES.new(key, AES.MODE_CBC, iv), lambda: RefAES.new(key, RefAES.MODE_CBC, iv), data, pieces, how)


@given(
    key=keys_aes,
    nonce=st.binary(max_size=15),
    initial=st.integers(min_value=0),
    data=data_any,
    how=outputs,
    st_data=st.data(),
)
def test_ctr_nonce(key: bytes, nonce: bytes, initial: int, data: bytes, how: str, st_data: st.DataObject) -> None:
    counter_len = 16 - len(nonce)
    initial %= 1 << (8 * counter_len)
    # Keep within the counter's range (MessageTooLongError is a state-machine matter, tested elsewhere);
    # initial values near the top make the counter field wrap inside the data.
    data = data[: 16 * (1 << (8 * counter_len))]
    pieces = st_data.draw(splits(data))
    _both_ways(
        lambda: AES.new(key, AES.MODE_CTR, nonce=nonce, initial_value=initial),
        lambda: RefAES.new(key, RefAES.MODE_CTR, nonce=nonce, initial_value=initial),
        data,
        pieces,
        how,
    )


@given(key=keys_aes, nonce=st.binary(max_size=15), data=data_any, st_data=st.data())
def test_ctr_wraps_counter_field(key: bytes, nonce: bytes, data: bytes, st_data: st.DataObject) -> None:
    """Start a few blocks before the counter field wraps: the kernel's ctr would carry into the nonce."""
    counter_len = 16 - len(nonce)
    initial = (1 << (8 * counter_len)) - st_data.draw(st.integers(1, 4))
    data = data[: 16 * (1 << (8 * counter_len))]
    pieces = st_data.draw(splits(data))
    _both_ways(
        lambda: AES.new(key, AES.MODE_CTR, nonce=nonce, initial_value=initial.to_bytes(counter_len, "big")),
        lambda: RefAES.new(key, RefAES.MODE_CTR, nonce=nonce, initial_value=initial),
        data,
        pieces,
        "return",
    )


@given(
    key=keys_aes,
    nbits=st.sampled_from((8, 16, 32, 64, 96, 128)),
    little=st.booleans(),
    fix=st.integers(0, 16),
    data=data_any,
    how=outputs,
    st_data=st.data(),
)
def test_ctr_counter_objects(
    key: bytes, nbits: int, little: bool, fix: int, data: bytes, how: str, st_data: st.DataObject
) -> None:
    room = 16 - nbits // 8
    fix = min(fix, room)
    prefix = st_data.draw(st.binary(min_size=fix, max_size=fix))
    suffix = st_data.draw(st.binary(min_size=room - fix, max_size=room - fix))
    initial = st_data.draw(st.integers(0, (1 << nbits) - 1))
    data = data[: 16 * (1 << nbits)]
    pieces = st_data.draw(splits(data))

    def counter() -> Any:
        return Counter.new(nbits, prefix=prefix, suffix=suffix, initial_value=initial, little_endian=little)

    _both_ways(
        lambda: AES.new(key, AES.MODE_CTR, counter=counter()),
        lambda: RefAES.new(key, RefAES.MODE_CTR, counter=counter()),
        data,
        pieces,
        how,
    )


@given(
    key=keys_aes,
    iv=st.binary(min_size=16, max_size=16),
    segment=st.sampled_from((8, 16, 24, 64, 120, 128)),
    data=st.binary(max_size=400),
    how=outputs,
    st_data=st.data(),
)
def test_cfb(key: bytes, iv: bytes, segment: int, data: bytes, how: str, st_data: st.DataObject) -> None:
    pieces = st_data.draw(splits(data))
    _both_ways(
        lambda: AES.new(key, AES.MODE_CFB, iv, segment_size=segment),
        lambda: RefAES.new(key, RefAES.MODE_CFB, iv, segment_size=segment),
        data,
        pieces,
        how,
    )


@given(key=keys_aes, iv=st.binary(min_size=16, max_size=16), data=data_any, how=outputs, st_data=st.data())
def test_ofb(key: bytes, iv: bytes, data: bytes, how: str, st_data: st.DataObject) -> None:
    pieces = st_data.draw(splits(data))
    _both_ways(lambda: AES.new(key, AES.MODE_OFB, iv), lambda: RefAES.new(key, RefAES.MODE_OFB, iv), data, pieces, how)


@given(
    key=st.sampled_from((32, 64)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    tweak=st.binary(min_size=16, max_size=16),
    units=st.lists(st.binary(min_size=16, max_size=600), min_size=1, max_size=3),
    how=outputs,
)
def test_xts(key: bytes, tweak: bytes, units: list[bytes], how: str) -> None:
    half = len(key) // 2
    if key[:half] == key[half:]:
        key = key[:half] + bytes(b ^ 1 for b in key[half:])
    enc = AES.new(key, AES.MODE_XTS_UNITS, tweak=tweak)
    dec = AES.new(key, AES.MODE_XTS_UNITS, tweak=tweak)
    number = int.from_bytes(tweak, "little")
    for i, unit in enumerate(units):
        t = ((number + i) % (1 << 128)).to_bytes(16, "little")
        expected = reference_xts(key, t, unit, True)
        assert _call(enc.encrypt, unit, how) == expected
        assert _call(dec.decrypt, expected, how) == unit


keys_des3 = st.sampled_from((16, 24)).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def _des3_key(raw: bytes) -> bytes | None:
    try:
        return RefDES3.adjust_key_parity(raw)
    except ValueError:
        return None


@given(
    raw=keys_des3,
    mode=st.sampled_from(("ECB", "CBC", "CTR", "CFB8", "CFB64", "OFB")),
    iv=st.binary(min_size=8, max_size=8),
    nonce=st.binary(max_size=7),
    data=st.binary(max_size=300),
    how=outputs,
    st_data=st.data(),
)
def test_des3(raw: bytes, mode: str, iv: bytes, nonce: bytes, data: bytes, how: str, st_data: st.DataObject) -> None:
    key = _des3_key(raw)
    if key is None:  # degenerate keys: both raise the same error (see tests/parity/test_cipher_api.py)
        with pytest.raises(ValueError, match="degenerates to single DES"):
            DES3.new(raw, DES3.MODE_ECB)
        return
    if mode in ("ECB", "CBC"):
        data = data[: len(data) // 8 * 8]
    pieces = st_data.draw(splits(data, 8 if mode in ("ECB", "CBC") else 1))
    if mode == "CTR":
        data = data[: 8 * (1 << (8 * (8 - len(nonce))))]
        pieces = st_data.draw(splits(data))

    def make(module: Any) -> Callable[[], Any]:
        if mode == "ECB":
            return lambda: module.new(key, module.MODE_ECB)
        if mode == "CBC":
            return lambda: module.new(key, module.MODE_CBC, iv)
        if mode == "CTR":
            return lambda: module.new(key, module.MODE_CTR, nonce=nonce)
        if mode == "OFB":
            return lambda: module.new(key, module.MODE_OFB, iv)
        return lambda: module.new(key, module.MODE_CFB, iv, segment_size=int(mode[3:]))

    _both_ways(make(DES3), make(RefDES3), data, pieces, how)


@given(
    key=st.binary(min_size=32, max_size=32),
    nonce_len=st.sampled_from((8, 12, 24)),
    seek=st.one_of(st.none(), st.integers(0, 1 << 20), st.integers((1 << 32) * 64 - 4096, (1 << 32) * 64 - 1)),
    data=data_any,
    how=outputs,
    st_data=st.data(),
)
def test_chacha20(key: bytes, nonce_len: int, seek: int | None, data: bytes, how: str, st_data: st.DataObject) -> None:
    nonce = st_data.draw(st.binary(min_size=nonce_len, max_size=nonce_len))
    if seek is not None and nonce_len != 8:
        data = data[: max(0, (1 << 32) * 64 - seek)]
    pieces = st_data.draw(splits(data))

    def make(module: Any) -> Callable[[], Any]:
        def new() -> Any:
            c = module.new(key=key, nonce=nonce)
            if seek is not None:
                c.seek(seek)
            return c

        return new

    _both_ways(make(ChaCha20), make(RefChaCha20), data, pieces, how)


@given(key=st.binary(min_size=32, max_size=32), nonce=st.binary(min_size=8, max_size=8), data=data_any)
def test_chacha20_64bit_counter_carry(key: bytes, nonce: bytes, data: bytes) -> None:
    """Across block 2**32 the kernel's 32-bit counter word wraps; PyCryptodome's 64-bit counter carries."""
    start = (1 << 32) * 64 - 100

    def make(module: Any) -> Any:
        c = module.new(key=key, nonce=nonce)
        c.seek(start)
        return c

    assert make(ChaCha20).encrypt(data) == make(RefChaCha20).encrypt(data)
