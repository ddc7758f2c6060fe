"""kcapi_hashlib.Cipher / Random against PyCryptodome on bad input: the same exception types and messages,
and no file descriptor leaked on any path (counted in /proc/self/fd)."""

from __future__ import annotations

import array
import gc
import os
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import DES3 as RefDES3
from Crypto.Cipher import ChaCha20 as RefChaCha20
from Crypto.Util import Counter as RefCounter

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import skcipher
from kcapi_hashlib.Cipher import AES, DES3, ChaCha20
from kcapi_hashlib.Random import get_random_bytes
from kcapi_hashlib.Util import Counter

OURS = SimpleNamespace(AES=AES, DES3=DES3, ChaCha20=ChaCha20, Counter=Counter)
REF = SimpleNamespace(AES=RefAES, DES3=RefDES3, ChaCha20=RefChaCha20, Counter=RefCounter)

K = bytes(range(16))
IV = bytes(16)
K3 = RefDES3.adjust_key_parity(bytes(range(24)))
K32 = bytes(range(32))
NONCONTIG = memoryview(bytearray(64))[::2]

CASES: dict[str, Callable[[Any], Any]] = {
    # keys
    "aes key 15": lambda m: m.AES.new(bytes(15), m.AES.MODE_ECB),
    "aes key 33": lambda m: m.AES.new(bytes(33), m.AES.MODE_CBC, IV),
    "aes key empty": lambda m: m.AES.new(b"", m.AES.MODE_CTR),
    "aes key str": lambda m: m.AES.new("k" * 16, m.AES.MODE_ECB),
    "aes key None": lambda m: m.AES.new(None, m.AES.MODE_ECB),
    "aes key int": lambda m: m.AES.new(16, m.AES.MODE_ECB),
    "aes key list": lambda m: m.AES.new([0] * 16, m.AES.MODE_ECB),
    "aes no mode": lambda m: m.AES.new(K),
    # modes and arguments
    "mode 99": lambda m: m.AES.new(K, 99),
    "mode 4": lambda m: m.AES.new(K, 4),
    "mode str": lambda m: m.AES.new(K, "CBC"),
    "ecb positional iv": lambda m: m.AES.new(K, m.AES.MODE_ECB, IV),
    "ecb iv keyword": lambda m: m.AES.new(K, m.AES.MODE_ECB, iv=IV),
    "ecb unknown keyword": lambda m: m.AES.new(K, m.AES.MODE_ECB, foo=1),
    "cbc two positional": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV, IV),
    "cbc iv and IV": lambda m: m.AES.new(K, m.AES.MODE_CBC, iv=IV, IV=IV),
    "cbc iv 15": lambda m: m.AES.new(K, m.AES.MODE_CBC, bytes(15)),
    "cbc iv 17": lambda m: m.AES.new(K, m.AES.MODE_CBC, iv=bytes(17)),
    "cbc iv str": lambda m: m.AES.new(K, m.AES.MODE_CBC, "i" * 16),
    "cbc unknown keyword": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV, segment_size=8),
    "cbc key bad and iv bad": lambda m: m.AES.new(bytes(5), m.AES.MODE_CBC, bytes(3)),
    "cfb segment 7": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV, segment_size=7),
    "cfb segment 0": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV, segment_size=0),
    "cfb segment -8": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV, segment_size=-8),
    "cfb segment 136": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV, segment_size=136),
    "cfb segment float": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV, segment_size=8.0),
    "cfb segment None": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV, segment_size=None),
    "cfb unknown keyword": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV, nonce=b""),
    "cfb iv 8": lambda m: m.AES.new(K, m.AES.MODE_CFB, bytes(8)),
    "ofb iv 8": lambda m: m.AES.new(K, m.AES.MODE_OFB, bytes(8)),
    "ofb unknown keyword": lambda m: m.AES.new(K, m.AES.MODE_OFB, IV, segment_size=8),
    "ofb two positional": lambda m: m.AES.new(K, m.AES.MODE_OFB, IV, IV),
    "ctr positional": lambda m: m.AES.new(K, m.AES.MODE_CTR, bytes(8)),
    "ctr nonce 16": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(16)),
    "ctr nonce str": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce="n" * 8),
    "ctr initial too large": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), initial_value=1 << 64),
    "ctr initial negative": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), initial_value=-1),
    "ctr initial bytes 7": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), initial_value=bytes(7)),
    "ctr counter and nonce": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), counter=m.Counter.new(64)),
    "ctr counter and initial": lambda m: m.AES.new(K, m.AES.MODE_CTR, initial_value=1, counter=m.Counter.new(64)),
    "ctr counter bad dict": lambda m: m.AES.new(K, m.AES.MODE_CTR, counter={"prefix": b""}),
    "ctr counter short": lambda m: m.AES.new(K, m.AES.MODE_CTR, counter=m.Counter.new(64)),
    "ctr counter long": lambda m: m.AES.new(K, m.AES.MODE_CTR, counter=m.Counter.new(64, prefix=bytes(12))),
    "ctr threads str": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), threads="2"),
    "ctr threads bool": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), threads=True),
    "ctr threads negative": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), threads=-1),
    "ctr unknown keyword": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8), iv=IV),
    "counter nbits 7": lambda m: m.Counter.new(7),
    "counter initial too long": lambda m: m.Counter.new(8, initial_value=256),
    # data and output= of the cipher calls
    "cbc unpadded encrypt": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(bytes(15)),
    "cbc unpadded decrypt": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).decrypt(bytes(17)),
    "ecb unaligned encrypt": lambda m: m.AES.new(K, m.AES.MODE_ECB).encrypt(bytes(1)),
    "ecb unaligned decrypt": lambda m: m.AES.new(K, m.AES.MODE_ECB).decrypt(bytes(31)),
    "cbc str data": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt("x" * 16),
    "cbc None data": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(None),
    "cbc int data": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(16),
    "cbc list data": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt([0] * 16),
    "cbc array data": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(array.array("B", bytes(16))),
    "cbc noncontiguous data": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(NONCONTIG),
    "cbc cast data": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(memoryview(bytes(32)).cast("I")),
    "ctr str data": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=bytes(8)).decrypt("abc"),
    "output short": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(bytes(16), output=bytearray(15)),
    "output long": lambda m: m.AES.new(K, m.AES.MODE_ECB).decrypt(bytes(16), output=bytearray(32)),
    "output bytes": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(bytes(16), output=bytes(16)),
    "output readonly view": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=b"").encrypt(b"ab", output=memoryview(b"xy")),
    "output list": lambda m: m.AES.new(K, m.AES.MODE_OFB, IV).encrypt(b"ab", output=[0, 0]),
    "output noncontiguous": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).encrypt(bytes(32), output=NONCONTIG),
    "output cast": lambda m: m.AES.new(K, m.AES.MODE_ECB).encrypt(
        bytes(32), output=memoryview(bytearray(32)).cast("I")
    ),
    "output positional": lambda m: m.AES.new(K, m.AES.MODE_ECB).encrypt(bytes(16), bytearray(16)),
    "cfb str data": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV).encrypt("abc"),
    "cfb output short": lambda m: m.AES.new(K, m.AES.MODE_CFB, IV).decrypt(b"abc", output=bytearray(2)),
    "ofb output long": lambda m: m.AES.new(K, m.AES.MODE_OFB, IV).decrypt(b"abc", output=bytearray(5)),
    "cbc output long": lambda m: m.AES.new(K, m.AES.MODE_CBC, IV).decrypt(bytes(16), output=bytearray(32)),
    "ctr output long": lambda m: m.AES.new(K, m.AES.MODE_CTR, nonce=b"").decrypt(b"abc", output=bytearray(5)),
    # DES3
    "des3 key 15": lambda m: m.DES3.new(bytes(15), m.DES3.MODE_ECB),
    "des3 key 32": lambda m: m.DES3.new(bytes(32), m.DES3.MODE_ECB),
    "des3 degenerate 16": lambda m: m.DES3.new(bytes(16), m.DES3.MODE_ECB),
    "des3 degenerate K2=K3": lambda m: m.DES3.new(bytes(range(8)) + bytes(16), m.DES3.MODE_CBC, bytes(8)),
    "des3 key int": lambda m: m.DES3.new(24, m.DES3.MODE_ECB),
    "des3 ctr no nonce": lambda m: m.DES3.new(K3, m.DES3.MODE_CTR),
    "des3 ctr nonce 8": lambda m: m.DES3.new(K3, m.DES3.MODE_CTR, nonce=bytes(8)),
    "des3 iv 16": lambda m: m.DES3.new(K3, m.DES3.MODE_CBC, IV),
    "des3 cfb segment 72": lambda m: m.DES3.new(K3, m.DES3.MODE_CFB, bytes(8), segment_size=72),
    "des3 mode 11": lambda m: m.DES3.new(K3, 11),
    "des3 mode 8": lambda m: m.DES3.new(K3, 8),
    "des3 unpadded": lambda m: m.DES3.new(K3, m.DES3.MODE_CBC, bytes(8)).encrypt(bytes(12)),
    # ChaCha20
    "chacha key 31": lambda m: m.ChaCha20.new(key=bytes(31)),
    "chacha key str": lambda m: m.ChaCha20.new(key="k" * 32, nonce=bytes(8)),
    "chacha key missing": lambda m: m.ChaCha20.new(nonce=bytes(8)),
    "chacha positional": lambda m: m.ChaCha20.new(K32),
    "chacha nonce 9": lambda m: m.ChaCha20.new(key=K32, nonce=bytes(9)),
    "chacha nonce 0": lambda m: m.ChaCha20.new(key=K32, nonce=b""),
    "chacha nonce str": lambda m: m.ChaCha20.new(key=K32, nonce="n" * 8),
    "chacha threads str": lambda m: m.ChaCha20.new(key=K32, nonce=bytes(8), threads="1"),
    "chacha unknown keyword": lambda m: m.ChaCha20.new(key=K32, nonce=bytes(8), iv=bytes(8)),
    "chacha str data": lambda m: m.ChaCha20.new(key=K32, nonce=bytes(12)).encrypt("abc"),
    "chacha output short": lambda m: m.ChaCha20.new(key=K32, nonce=bytes(12)).decrypt(b"abc", output=bytearray(2)),
    "chacha seek float": lambda m: m.ChaCha20.new(key=K32, nonce=bytes(12)).seek(1.5),
    "chacha seek str": lambda m: m.ChaCha20.new(key=K32, nonce=bytes(12)).seek("1"),
}


def _outcome(fn: Callable[[], Any]) -> tuple[str, str]:
    try:
        result = fn()
    except Exception as e:
        return type(e).__name__, str(e)
    return "ok", type(result).__name__


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("case", list(CASES))
def test_same_error_as_pycryptodome(case: str) -> None:
    want = _outcome(lambda: CASES[case](REF))
    get_random_bytes(1)  # the process's DRBG socket (kept open on purpose) exists before the count
    _outcome(lambda: CASES[case](OURS))  # and the probed (unkeyed, bound once per process) tfms it binds
    skcipher.forget_keys()
    gc.collect()
    before = _fds()
    got = _outcome(lambda: CASES[case](OURS))
    assert got == want
    gc.collect()
    skcipher.forget_keys()
    assert _fds() == before, "file descriptors leaked"


def test_error_cases_cover_every_exception_kind() -> None:
    kinds = {_outcome(lambda fn=fn: fn(REF))[0] for fn in CASES.values()}  # type: ignore[misc]
    assert {"ValueError", "TypeError", "BufferError", "ok"} <= kinds


@pytest.mark.parametrize("size", [-1, "8", 1.5, None])
def test_get_random_bytes_errors_match_urandom(size: Any) -> None:
    with pytest.raises(Exception) as ours:
        get_random_bytes(size)
    with pytest.raises(Exception) as ref:
        os.urandom(size)
    assert (type(ours.value), str(ours.value)) == (type(ref.value), str(ref.value))


@pytest.mark.parametrize(
    "mode", [AES.MODE_OPENPGP, AES.MODE_EAX, AES.MODE_SIV, AES.MODE_OCB, AES.MODE_KW, AES.MODE_KWP]
)
def test_modes_without_kernel_follow_the_policy(mode: int) -> None:
    key = bytes(32) if mode == AES.MODE_SIV else K
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="unsupported cipher type AES-") as e:
        AES.new(key, mode)
    assert isinstance(e.value, ValueError)
    assert "no kernel implementation" in str(e.value.reason)
    kcapi_hashlib.set_policy("fallback")
    kcapi_hashlib.reset_fallback_counts()
    with pytest.warns(kcapi_hashlib.KernelFallbackWarning):
        obj = AES.new(key, mode)
    assert type(obj).__module__.startswith("Crypto.Cipher.")
    assert sum(kcapi_hashlib.fallback_counts().values()) == 1


def test_des3_policy_modes() -> None:
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="unsupported cipher type DES3-EAX"):
        DES3.new(K3, DES3.MODE_EAX)
    with pytest.raises(ValueError, match="Mode not supported"):
        DES3.new(K3, AES.MODE_SIV)


def test_fallback_does_not_recurse_into_install() -> None:
    """Under install() + fallback, PyCryptodome's own objects are built (not ours again)."""
    kcapi_hashlib.set_policy("fallback")
    with kcapi_hashlib.patched(), pytest.warns(kcapi_hashlib.KernelFallbackWarning):
        obj = RefAES.new(K, RefAES.MODE_EAX, nonce=bytes(16))
        ct, tag = obj.encrypt_and_digest(b"data")
    assert type(obj).__name__ == "EaxMode"
    assert len(tag) == 16 and len(ct) == 4


def test_xts_arguments() -> None:
    with pytest.raises(ValueError, match=r"Incorrect XTS key length \(16 bytes\)"):
        AES.new(K, AES.MODE_XTS_UNITS, tweak=0)
    with pytest.raises(ValueError, match="halves of an XTS key must differ"):
        AES.new(K * 2, AES.MODE_XTS_UNITS, tweak=0)
    with pytest.raises(TypeError, match="needs a 'tweak'"):
        AES.new(K32, AES.MODE_XTS_UNITS)
    with pytest.raises(ValueError, match="Incorrect tweak length"):
        AES.new(K32, AES.MODE_XTS_UNITS, bytes(8))
    with pytest.raises(ValueError, match=r"\[0, 2\*\*128\)"):
        AES.new(K32, AES.MODE_XTS_UNITS, tweak=-1)
    with pytest.raises(TypeError, match="Too many arguments"):
        AES.new(K32, AES.MODE_XTS_UNITS, bytes(16), bytes(16))
    with pytest.raises(TypeError, match="Unknown parameters for XTS"):
        AES.new(K32, AES.MODE_XTS_UNITS, tweak=0, iv=IV)
    c = AES.new(K32, AES.MODE_XTS_UNITS, tweak=0)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        c.encrypt(bytes(15))
    with pytest.raises(ValueError, match="one kernel request"):
        c.encrypt(bytes(skcipher.max_message() + 16))
    with pytest.raises(ValueError, match="Mode not supported"):
        DES3.new(K3, AES.MODE_XTS_UNITS, bytes(16))


def test_attributes_match_pycryptodome() -> None:
    pairs = [
        (AES.new(K, AES.MODE_ECB), RefAES.new(K, RefAES.MODE_ECB)),
        (AES.new(K, AES.MODE_CBC, IV), RefAES.new(K, RefAES.MODE_CBC, IV)),
        (AES.new(K, AES.MODE_CFB, IV), RefAES.new(K, RefAES.MODE_CFB, IV)),
        (AES.new(K, AES.MODE_OFB, IV), RefAES.new(K, RefAES.MODE_OFB, IV)),
        (AES.new(K, AES.MODE_CTR, nonce=IV[:8]), RefAES.new(K, RefAES.MODE_CTR, nonce=IV[:8])),
        (AES.new(K, AES.MODE_CTR, nonce=b""), RefAES.new(K, RefAES.MODE_CTR, nonce=b"")),
        (
            AES.new(K, AES.MODE_CTR, counter=Counter.new(32, prefix=bytes(4), suffix=bytes(8))),
            RefAES.new(K, RefAES.MODE_CTR, counter=RefCounter.new(32, prefix=bytes(4), suffix=bytes(8))),
        ),
        (DES3.new(K3, DES3.MODE_CBC, bytes(8)), RefDES3.new(K3, RefDES3.MODE_CBC, bytes(8))),
        (DES3.new(K3, DES3.MODE_CTR, nonce=b"abc"), RefDES3.new(K3, RefDES3.MODE_CTR, nonce=b"abc")),
        (ChaCha20.new(key=K32, nonce=bytes(12)), RefChaCha20.new(key=K32, nonce=bytes(12))),
    ]
    for ours, ref in pairs:
        public = sorted(n for n in dir(ref) if not n.startswith("_"))
        assert sorted(n for n in dir(ours) if not n.startswith("_")) == public
        for name in public:
            # PyCryptodome 4.5's CTR nonce is a property raising AttributeError where the counter has a suffix
            a, b = getattr(ours, name, AttributeError), getattr(ref, name, AttributeError)
            if not callable(b):
                assert (type(a), a) == (type(b), b), name
    assert (AES.block_size, AES.key_size, DES3.block_size, DES3.key_size) == (
        RefAES.block_size,
        RefAES.key_size,
        RefDES3.block_size,
        RefDES3.key_size,
    )
    assert (ChaCha20.block_size, ChaCha20.key_size) == (RefChaCha20.block_size, RefChaCha20.key_size)
    for name in dir(RefAES):
        if name.startswith("MODE_"):
            assert getattr(AES, name) == getattr(RefAES, name)
    for name in dir(RefDES3):
        if name.startswith("MODE_"):
            assert getattr(DES3, name) == getattr(RefDES3, name)


def test_random_iv_and_nonce_defaults() -> None:
    ops = _afalg.stats()["recv"]
    a, b = AES.new(K, AES.MODE_CBC), AES.new(K, AES.MODE_CBC)
    assert len(a.iv) == 16 and a.iv != b.iv and a.IV is a.iv
    assert len(AES.new(K, AES.MODE_CTR).nonce) == 8
    assert len(ChaCha20.new(key=K32).nonce) == 8
    assert _afalg.stats()["recv"] > ops  # the random values came from the kernel DRBG


def test_kernel_refusal_closes_the_op_socket() -> None:
    """A request the kernel refuses (cbc(aes) of 20 bytes: EINVAL in crypto_cbc_encrypt) raises KernelError and
    the op socket, whose state is unknown, is closed, not pooled."""
    skcipher.forget_keys()
    gc.collect()
    before = _fds()
    tfm = skcipher.keyed("cbc(aes)", K)
    with pytest.raises(kcapi_hashlib.KernelError) as e:
        skcipher.message(tfm, True, IV, [bytes(20)], [memoryview(bytearray(20))])
    assert e.value.errno == 22
    assert not tfm._idle
    out = skcipher.message_bytes(tfm, True, IV, [bytes(16)])  # the tfm still works, on a new op socket
    assert out == RefAES.new(K, RefAES.MODE_CBC, IV).encrypt(bytes(16))
    del tfm, e  # the traceback's frames hold the tfm too: the cache never closes a tfm someone still holds
    skcipher.forget_keys()
    gc.collect()
    assert _fds() == before
