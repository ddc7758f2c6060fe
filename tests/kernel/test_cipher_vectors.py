"""Published cipher vectors, each through every constructor: kcapi_hashlib's module (keyword and positional
arguments), PyCryptodome's module with kcapi_hashlib installed (install() routes it to the kernel), and the
reference implementation (PyCryptodome itself; for XTS, which PyCryptodome lacks, IEEE 1619 composed from
PyCryptodome's AES in this file). Kernel constructors must reach the kernel: their AF_ALG operation count
must grow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import DES3 as RefDES3
from Crypto.Cipher import ChaCha20 as RefChaCha20
from Crypto.Util import Counter as RefCounter

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES, DES3, ChaCha20
from kcapi_hashlib.Util import Counter
from tests.support import requires
from tests.support.vectors import ids, load

pytestmark = [
    requires.modes("v", requires.AES_MODES, only="test_sp800_38a"),
    requires.modes("v", requires.TDES_MODES, only="test_sp800_67_tdes"),
    requires.kernel_alg("skcipher", "xts(aes)", only="test_sp800_38e_xts"),
    requires.kernel_alg("skcipher", "chacha20", only="test_rfc8439_chacha20"),
]

SP800_38A = load("sp800_38a_aes.json")
SP800_67 = load("sp800_67_tdes.json")
XTS = load("XTSGenAES128_subset.rsp")
CHACHA = load("rfc8439_chacha20.json")

KERNEL = ("ours-keywords", "ours-positional", "installed")
CONSTRUCTORS = (*KERNEL, "reference")


@pytest.fixture
def installed(request: pytest.FixtureRequest) -> Iterator[None]:
    with kcapi_hashlib.patched():
        yield


def _kernel_ops() -> int:
    s = _afalg.stats()
    return s["send"] + s["recv"]


def _aes_module(how: str) -> Any:
    if how in ("ours-keywords", "ours-positional"):
        return AES
    return RefAES  # patched by install() for "installed"


def _aes(how: str, v: dict[str, Any]) -> Any:
    mod = _aes_module(how)
    mode = {"ECB": 1, "CBC": 2, "CFB": 3, "OFB": 5, "CTR": 6}[v["mode"]]
    key = v["key"]
    if mode == 1:
        return mod.new(key, mode)
    if mode == 6:
        counter_module = Counter if how.startswith("ours") else RefCounter
        counter = counter_module.new(
            v["counter_nbits"], prefix=v["counter_prefix"], initial_value=v["counter_initial_value"]
        )
        return mod.new(key, mode, counter=counter)
    extra = {"segment_size": v["segment_size"]} if "segment_size" in v else {}
    if how == "ours-positional":
        return mod.new(key, mode, v["iv"], **extra)
    return mod.new(key, mode, iv=v["iv"], **extra)


def _run(how: str, make: Callable[[], Any], encrypt: bool, data: bytes) -> bytes:
    before = _kernel_ops()
    out = make().encrypt(data) if encrypt else make().decrypt(data)
    if how in KERNEL:
        assert _kernel_ops() > before, f"{how}: no AF_ALG operation was made"
    assert isinstance(out, bytes)
    return out


def _with_install(how: str, fn: Callable[[], bytes]) -> bytes:
    if how == "installed":
        with kcapi_hashlib.patched():
            return fn()
    return fn()


@pytest.mark.parametrize("how", CONSTRUCTORS)
@pytest.mark.parametrize("v", SP800_38A, ids=ids(SP800_38A))
def test_sp800_38a(v: dict[str, Any], how: str) -> None:
    enc = _with_install(how, lambda: _run(how, lambda: _aes(how, v), True, v["plaintext"]))
    assert enc == v["ciphertext"]
    dec = _with_install(how, lambda: _run(how, lambda: _aes(how, v), False, v["ciphertext"]))
    assert dec == v["plaintext"]


@pytest.mark.parametrize("how", CONSTRUCTORS)
@pytest.mark.parametrize("v", SP800_67, ids=ids(SP800_67))
def test_sp800_67_tdes(v: dict[str, Any], how: str) -> None:
    def make() -> Any:
        mod = DES3 if how.startswith("ours") else RefDES3
        return mod.new(v["key"], mod.MODE_ECB)

    assert _with_install(how, lambda: _run(how, make, True, v["plaintext"])) == v["ciphertext"]
    assert _with_install(how, lambda: _run(how, make, False, v["ciphertext"])) == v["plaintext"]


# --- XTS (NIST SP 800-38E / IEEE 1619) --------------------------------------------------------------------


def _gf_double(t: int) -> int:
    """Multiply the tweak by x in GF(2^128) (IEEE 1619 5.2: little-endian, reduction by x^128+x^7+x^2+x+1)."""
    t <<= 1
    if t >> 128:
        t = (t & ((1 << 128) - 1)) ^ 0x87
    return t


def reference_xts(key: bytes, tweak: bytes, data: bytes, encrypt: bool) -> bytes:
    """IEEE 1619-2007 XTS-AES (sections 5.3 and 5.4, ciphertext stealing included) from PyCryptodome's AES."""
    half = len(key) // 2
    k1 = RefAES.new(key[:half], RefAES.MODE_ECB)
    t = int.from_bytes(RefAES.new(key[half:], RefAES.MODE_ECB).encrypt(tweak), "little")
    op = k1.encrypt if encrypt else k1.decrypt

    def block(b: bytes, tw: int) -> bytes:
        x = tw.to_bytes(16, "little")
        return bytes(p ^ q for p, q in zip(op(bytes(p ^ q for p, q in zip(b, x))), x))

    m, tail = divmod(len(data), 16)
    whole = m - 1 if tail else m
    out = bytearray()
    for j in range(whole):
        out += block(data[16 * j : 16 * j + 16], t)
        t = _gf_double(t)
    if tail:
        last = data[16 * whole : 16 * whole + 16]
        rest = data[16 * whole + 16 :]
        if encrypt:
            cc = block(last, t)
            pp = rest + cc[tail:]
            out += block(pp, _gf_double(t)) + cc[:tail]
        else:
            pp = block(last, _gf_double(t))
            cc = rest + pp[tail:]
            out += block(cc, t) + pp[:tail]
    return bytes(out)


@pytest.mark.parametrize("how", ("ours-keywords", "ours-positional", "ours-int-tweak", "reference"))
@pytest.mark.parametrize("v", XTS, ids=ids(XTS, "COUNT"))
def test_sp800_38e_xts(v: dict[str, Any], how: str) -> None:
    bits = int(v["DataUnitLen"])
    assert bits % 8 == 0
    key, tweak, pt, ct = v["Key"], v["i"], v["PT"], v["CT"]
    assert len(pt) * 8 == bits

    def make() -> Any:
        if how == "ours-positional":
            return AES.new(key, AES.MODE_XTS_UNITS, tweak)
        if how == "ours-int-tweak":
            return AES.new(key, AES.MODE_XTS_UNITS, tweak=int.from_bytes(tweak, "little"))
        return AES.new(key, AES.MODE_XTS, tweak=tweak)

    if how == "reference":
        assert reference_xts(key, tweak, pt, True) == ct
        assert reference_xts(key, tweak, ct, False) == pt
        return
    assert _run("ours-keywords", make, True, pt) == ct
    assert _run("ours-keywords", make, False, ct) == pt


# --- ChaCha20 (RFC 8439), XChaCha20 ---------------------------------------------------------------------


@pytest.mark.parametrize("how", CONSTRUCTORS)
@pytest.mark.parametrize("v", CHACHA, ids=ids(CHACHA))
def test_rfc8439_chacha20(v: dict[str, Any], how: str) -> None:
    def make() -> Any:
        mod = ChaCha20 if how.startswith("ours") else RefChaCha20
        c = mod.new(key=v["key"], nonce=v["nonce"])
        c.seek(64 * v["counter"])
        return c

    assert _with_install(how, lambda: _run(how, make, True, v["plaintext"])) == v["ciphertext"]
    assert _with_install(how, lambda: _run(how, make, False, v["ciphertext"])) == v["plaintext"]


def test_installed_really_routes_to_the_kernel() -> None:
    with kcapi_hashlib.patched():
        assert RefAES.new is AES.new
        assert RefDES3.new is DES3.new
        assert RefChaCha20.new is ChaCha20.new
    assert RefAES.new is not AES.new
