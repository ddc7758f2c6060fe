"""Published AEAD vectors (GCM spec / SP 800-38D test cases incl. 64- and 480-bit IVs, SP 800-38C and RFC 3610
CCM, RFC 8439 ChaCha20-Poly1305, draft-irtf-cfrg-xchacha XChaCha20-Poly1305), each through every constructor:
kcapi_hashlib's module (keyword and positional nonce; one call and byte-split calls), PyCryptodome's module
with kcapi_hashlib installed, and the reference (PyCryptodome itself). Kernel constructors must reach the
kernel (the AF_ALG operation count grows); each vector's tag is also checked to be rejected when altered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import ChaCha20_Poly1305 as RefCP

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305
from tests.support import requires
from tests.support.vectors import ids, load

pytestmark = [
    requires.kernel_alg("aead", "gcm(aes)", only="test_gcm"),
    requires.kernel_alg("aead", "ccm(aes)", only="test_ccm"),
    requires.kernel_alg("aead", "rfc7539(chacha20,poly1305)", only="test_chacha20_poly1305"),
]

GCM = load("sp800_38d_gcm.json")
CCM = load("sp800_38c_ccm.json")
CHACHAPOLY = load("rfc8439_aead.json")

CONSTRUCTORS = ("ours-keywords", "ours-positional", "ours-split", "installed", "reference")


@pytest.fixture(params=CONSTRUCTORS)
def how(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "installed":
        with kcapi_hashlib.patched():
            yield request.param
    else:
        yield request.param


def _ops() -> int:
    s = _afalg.stats()
    return s["send"] + s["recv"]


def _aes(how: str, mode: int, v: dict[str, Any], **extra: Any) -> Any:
    module: Any = AES if how.startswith("ours") else RefAES  # RefAES is ours once installed
    kw = dict(mac_len=len(v["tag"]), **extra)
    if how == "ours-positional":
        return module.new(v["key"], mode, v["nonce"], **kw)
    return module.new(v["key"], mode, nonce=v["nonce"], **kw)


def _chachapoly(how: str, v: dict[str, Any]) -> Any:
    module: Any = ChaCha20_Poly1305 if how.startswith("ours") else RefCP
    return module.new(key=v["key"], nonce=v["nonce"])


def _run(how: str, make: Callable[[], Any], v: dict[str, Any]) -> None:
    before = _ops()
    enc = make()
    if how == "ours-split":  # one byte per call: AAD, then data
        for i in range(len(v["aad"])):
            enc.update(v["aad"][i : i + 1])
        ct = b"".join(enc.encrypt(v["pt"][i : i + 1]) for i in range(len(v["pt"])))
        tag = enc.digest()
    else:
        enc.update(v["aad"])
        ct, tag = enc.encrypt_and_digest(v["pt"])
    assert (ct, tag) == (v["ct"], v["tag"])

    dec = make()
    dec.update(v["aad"])
    if how == "ours-split":
        pt = b"".join(dec.decrypt(v["ct"][i : i + 1]) for i in range(len(v["ct"])))
        dec.verify(v["tag"])
    else:
        pt = dec.decrypt_and_verify(v["ct"], v["tag"])
    assert pt == v["pt"]

    bad = bytes([v["tag"][0] ^ 1]) + v["tag"][1:]
    dec = make()
    dec.update(v["aad"])
    with pytest.raises(ValueError, match="MAC check failed"):
        dec.decrypt_and_verify(v["ct"], bad)
    if how != "reference":
        assert _ops() > before, "a kernel constructor made no AF_ALG operation"


@pytest.mark.parametrize("v", GCM, ids=ids(GCM))
def test_gcm(v: dict[str, Any], how: str) -> None:
    _run(how, lambda: _aes(how, AES.MODE_GCM, v), v)


@pytest.mark.parametrize("v", CCM, ids=ids(CCM))
def test_ccm(v: dict[str, Any], how: str) -> None:
    # Split calls need the lengths declared (PyCryptodome's rule); the others leave them implicit.
    extra = dict(msg_len=len(v["pt"]), assoc_len=len(v["aad"])) if how == "ours-split" else {}
    _run(how, lambda: _aes(how, AES.MODE_CCM, v, **extra), v)


@pytest.mark.parametrize("v", CHACHAPOLY, ids=ids(CHACHAPOLY))
def test_chacha20_poly1305(v: dict[str, Any], how: str) -> None:
    if how == "ours-positional":  # keywords only, as PyCryptodome's
        with pytest.raises(TypeError, match="positional"):
            ChaCha20_Poly1305.new(v["key"], v["nonce"])  # type: ignore[misc]
        return
    if len(v["nonce"]) == 24 and how != "reference" and _afalg.probe("hash", "poly1305") is not None:
        # XChaCha20-Poly1305 needs the kernel's poly1305 hash; without it strict policy refuses (tested in
        # tests/parity/test_aead_api.py), so this kernel cannot check the vector.
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm):
            _chachapoly(how, v)
        return
    _run(how, lambda: _chachapoly(how, v), v)


def test_gcm_vectors_cover_non_96_bit_ivs() -> None:
    assert {len(v["nonce"]) for v in GCM} >= {8, 12, 60}
