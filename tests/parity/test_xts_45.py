"""PyCryptodome 4.5's API surfaces on the kernel: AES.MODE_XTS (16) served by xts(aes), MODE_GCM_SIV (15) under the
policy, CTR's read-only nonce, CMAC's BufferError for a strided memoryview, and kcapi_hashlib's byte semantics
for non-byte buffers (checked against PyCryptodome on the buffer's bytes: PyCryptodome counts items there).

The XTS data unit is checked where the kernel cannot do it in one request: pieces after the first (the kernel's
crypto/xts.c starts every request at block 0: kcapi_hashlib sends the IV D_K2(T * alpha**j)) and pieces longer than
one request, against a block-by-block reference built on PyCryptodome's ECB (IEEE 1619 section 5.3.2).
"""

from __future__ import annotations

import array
import warnings

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Hash import CMAC as RefCMAC

import kcapi_hashlib
from kcapi_hashlib import accounting, reset_accounting
from kcapi_hashlib._afalg import skcipher
from kcapi_hashlib.Cipher import AES, API_VERSION
from kcapi_hashlib.Hash import CMAC

pytestmark = [
    pytest.mark.skipif(
        API_VERSION < (4, 5), reason=f"PyCryptodome {API_VERSION} here: MODE_XTS is kcapi_hashlib's own"
    ),
]

KEY = bytes(range(32))
KEY64 = bytes(range(64))
TWEAK = bytes(range(100, 116))


def reference_xts(key: bytes, tweak: bytes, data: bytes, decrypt: bool = False) -> bytes:
    """XTS block by block (IEEE 1619 5.3.2, ciphertext stealing 5.3.2/5.4.2) on PyCryptodome's AES-ECB."""
    half = len(key) // 2
    ecb = RefAES.new(key[:half], RefAES.MODE_ECB)
    op = ecb.decrypt if decrypt else ecb.encrypt
    t = int.from_bytes(RefAES.new(key[half:], RefAES.MODE_ECB).encrypt(tweak), "little")

    def step() -> bytes:
        nonlocal t
        out = t.to_bytes(16, "little")
        t <<= 1
        if t >> 128:
            t ^= (1 << 128) ^ 0x87
        return out

    def one(block: bytes, tw: bytes) -> bytes:
        x = bytes(a ^ b for a, b in zip(block, tw))
        return bytes(a ^ b for a, b in zip(op(x), tw))

    partial = len(data) % 16
    full = len(data) - partial - (16 if partial else 0)
    out = b"".join(one(data[i : i + 16], step()) for i in range(0, full, 16))
    if partial:
        t1, t2 = step(), step()
        if decrypt:
            t1, t2 = t2, t1
        block = one(data[full : full + 16], t1)
        out += one(data[full + 16 :] + block[partial:], t2) + block[:partial]
    return out


def _kernel_ops(name: str) -> int:
    return sum(k["operations"] for k in accounting()["kernel"] if k["algorithm"] == name)


def test_constants() -> None:
    assert AES.MODE_XTS == 16 and AES.MODE_GCM_SIV == 15 and AES.MODE_XTS_UNITS == 100
    assert RefAES.MODE_XTS == AES.MODE_XTS and RefAES.MODE_GCM_SIV == AES.MODE_GCM_SIV


@pytest.mark.parametrize("key", [KEY, KEY64], ids=["xts128", "xts256"])
@pytest.mark.parametrize(
    "pieces",
    [(16,), (17,), (48, 16, 40), (16, 16, 16, 31), (4096, 4096 + 33), ("big", 16), (16, "big+5")],
)
def test_pieces_are_one_data_unit(key: bytes, pieces: tuple[object, ...]) -> None:
    limit = skcipher.max_message()
    sizes = [limit * 3 if p == "big" else limit * 2 + 5 if p == "big+5" else int(str(p)) for p in pieces]
    data = bytes(i * 7 % 251 for i in range(sum(sizes)))
    expected = reference_xts(key, TWEAK, data)
    reset_accounting()
    kcapi_hashlib.reset_fallback_counts()
    for decrypt, src, want in ((False, data, expected), (True, expected, data)):
        c = AES.new(key, AES.MODE_XTS, tweak=TWEAK)
        method = c.decrypt if decrypt else c.encrypt
        out, pos = [], 0
        for n in sizes:
            out.append(method(src[pos : pos + n]))
            pos += n
        assert b"".join(out) == want
        # into a caller's buffer, the same pieces
        c = AES.new(key, AES.MODE_XTS, tweak=TWEAK)
        method = c.decrypt if decrypt else c.encrypt
        buf, pos = bytearray(len(src)), 0
        for n in sizes:
            assert method(src[pos : pos + n], output=memoryview(buf)[pos : pos + n]) is None
            pos += n
        assert bytes(buf) == want
    assert _kernel_ops("xts(aes)") >= 4
    assert not kcapi_hashlib.fallback_counts()


def test_rules_and_messages_match_pycryptodome() -> None:
    def outcome(mod: object, fn: str) -> object:
        try:
            c = mod.new(KEY, mod.MODE_XTS, tweak=TWEAK)  # type: ignore[attr-defined]
            return eval(fn, {"c": c, "d": bytes(100)})
        except Exception as e:
            return type(e).__name__, str(e)

    for fn in (
        "c.encrypt(d[:15])",
        "(c.encrypt(d[:20]), c.encrypt(d[:16]))",
        "(c.encrypt(d[:32]), c.encrypt(d[:5]))",
        "(c.encrypt(d[:20]), c.encrypt(b''))",
        "(c.encrypt(d[:16]), c.decrypt(d[:16]))",
        "c.encrypt(d[:40], output=bytearray(39))",
        "c.encrypt(d[:40], output=bytes(40))",
        "c.tweak",
        "c.block_size",
    ):
        assert outcome(AES, fn) == outcome(RefAES, fn), fn
    for args, kwargs in (
        ((KEY,), {}),
        ((KEY, TWEAK), {}),
        ((KEY,), {"tweak": 5}),
        ((KEY,), {"tweak": bytes(15)}),
        ((bytes(48),), {"tweak": TWEAK}),
        ((bytes(16) * 2,), {"tweak": TWEAK}),
        ((KEY,), {"tweak": TWEAK, "threads": 2}),
    ):
        ours = theirs = None
        try:
            AES.new(args[0], AES.MODE_XTS, *args[1:], **kwargs)
        except Exception as e:
            ours = (type(e).__name__, str(e))
        try:
            RefAES.new(args[0], RefAES.MODE_XTS, *args[1:], **kwargs)
        except Exception as e:
            theirs = (type(e).__name__, str(e))
        assert ours == theirs and ours is not None, (args, kwargs)


def test_data_unit_limit() -> None:
    c = AES.new(KEY, AES.MODE_XTS, tweak=TWEAK)
    c.encrypt(bytes((1 << 24) - 16))
    with pytest.raises(OverflowError, match="16 MiB"):
        c.encrypt(bytes(17))
    c.encrypt(bytes(16))
    with pytest.raises(OverflowError, match="16 MiB"):
        c.encrypt(bytes(16))


def test_non_byte_buffer_is_its_bytes() -> None:
    words = array.array("I", range(100, 116))  # 64 bytes
    raw = words.tobytes()
    assert AES.new(KEY, AES.MODE_XTS, tweak=TWEAK).encrypt(memoryview(words)) == reference_xts(KEY, TWEAK, raw)
    assert AES.new(KEY, AES.MODE_XTS, tweak=TWEAK).encrypt(raw) == RefAES.new(
        KEY, RefAES.MODE_XTS, tweak=TWEAK
    ).encrypt(raw)
    # CMAC: the MAC of the buffer's 64 bytes (PyCryptodome itself MACs 16 items' worth: compare on the bytes)
    ours = CMAC.new(KEY[:16], memoryview(words), ciphermod=AES).digest()
    assert ours == RefCMAC.new(KEY[:16], raw, ciphermod=RefAES).digest()


@pytest.mark.parametrize("length", [32, 40, 64])
def test_cmac_strided_view_is_a_buffer_error(length: int) -> None:
    view = memoryview(bytes(length))[::2]
    for cmac, aes in ((RefCMAC, RefAES), (CMAC, AES)):
        with pytest.raises(BufferError, match="not C-contiguous"):
            cmac.new(KEY[:16], view, ciphermod=aes)
        with pytest.raises(BufferError, match="not C-contiguous"):
            cmac.new(KEY[:16], ciphermod=aes).update(view)


def test_gcm_siv_follows_the_policy() -> None:
    previous = kcapi_hashlib.set_policy("strict")
    try:
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="AES-GCM_SIV"):
            AES.new(KEY, AES.MODE_GCM_SIV, nonce=bytes(12))
        kcapi_hashlib.set_policy("fallback")
        kcapi_hashlib.reset_fallback_counts()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
            c = AES.new(KEY, AES.MODE_GCM_SIV, bytes(12))
        ct, tag = c.encrypt_and_digest(b"data")
        ref = RefAES.new(KEY, RefAES.MODE_GCM_SIV, nonce=bytes(12)).encrypt_and_digest(b"data")
        assert (ct, tag) == ref
        assert kcapi_hashlib.fallback_counts() == {"AES-GCM_SIV": 1}
    finally:
        kcapi_hashlib.set_policy(previous)
        kcapi_hashlib.reset_fallback_counts()


def test_ctr_nonce_attribute() -> None:
    from Crypto.Util import Counter

    c = AES.new(KEY[:16], AES.MODE_CTR, nonce=bytes(8))
    assert c.nonce == bytes(8)
    with pytest.raises(AttributeError):
        c.nonce = b""
    with_suffix = AES.new(KEY[:16], AES.MODE_CTR, counter=Counter.new(64, prefix=bytes(4), suffix=bytes(4)))
    assert not hasattr(with_suffix, "nonce")
    with pytest.raises(AttributeError, match=r"Counter\.new"):
        _ = with_suffix.nonce


def test_legacy_units_api_stays() -> None:
    c = AES.new(KEY, AES.MODE_XTS_UNITS, tweak=5)
    unit = bytes(range(40))
    assert c.encrypt(unit) == reference_xts(KEY, (5).to_bytes(16, "little"), unit)
    assert c.encrypt(unit) == reference_xts(KEY, (6).to_bytes(16, "little"), unit)
