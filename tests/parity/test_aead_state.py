"""The AEAD call-order state machines, against PyCryptodome's: every sequence of up to four calls among
update/encrypt/decrypt/digest/verify (and the combined methods), for GCM, CCM (lengths declared or not) and
ChaCha20-Poly1305, must give the same results and the same exceptions (type and message) at every step."""

from __future__ import annotations

import itertools
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import ChaCha20_Poly1305 as RefCP

from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305
from tests.support import requires

KEY = bytes(range(32))
CALLS = ("update", "encrypt", "decrypt", "digest", "verify", "verify_good")
FACTORIES: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "gcm": (
        lambda: AES.new(KEY[:16], AES.MODE_GCM, nonce=b"n" * 12),
        lambda: RefAES.new(KEY[:16], RefAES.MODE_GCM, nonce=b"n" * 12),
    ),
    "gcm-nonce7": (
        lambda: AES.new(KEY[:24], AES.MODE_GCM, nonce=b"n" * 7, mac_len=10),
        lambda: RefAES.new(KEY[:24], RefAES.MODE_GCM, nonce=b"n" * 7, mac_len=10),
    ),
    "ccm": (
        lambda: AES.new(KEY[:16], AES.MODE_CCM, nonce=b"n" * 11),
        lambda: RefAES.new(KEY[:16], RefAES.MODE_CCM, nonce=b"n" * 11),
    ),
    "ccm-declared": (
        lambda: AES.new(KEY[:16], AES.MODE_CCM, nonce=b"n" * 11, msg_len=10, assoc_len=6, mac_len=8),
        lambda: RefAES.new(KEY[:16], RefAES.MODE_CCM, nonce=b"n" * 11, msg_len=10, assoc_len=6, mac_len=8),
    ),
    "chachapoly": (
        lambda: ChaCha20_Poly1305.new(key=KEY, nonce=b"n" * 12),
        lambda: RefCP.new(key=KEY, nonce=b"n" * 12),
    ),
}


def _outcome(obj: Any, call: str, ref_tag: list[bytes]) -> tuple[str, object]:
    try:
        if call == "update":
            r: object = obj.update(b"hdr")
            r = None if r is obj or r is None else r
        elif call == "encrypt":
            r = obj.encrypt(b"plain")
        elif call == "decrypt":
            r = obj.decrypt(b"ciphe")
        elif call == "digest":
            r = obj.digest()
        elif call == "verify":
            r = obj.verify(b"\x00" * 16)
        else:  # verify with the tag PyCryptodome computed for the same sequence (if any)
            r = obj.verify(ref_tag[0] if ref_tag else b"\x00" * 16)
        return ("ok", r)
    except Exception as e:  # the exception itself is what is compared
        return (type(e).__name__, str(e))


def _ref_tag(make: Callable[[], Any], seq: tuple[str, ...]) -> list[bytes]:
    """The tag the reference object holds after the decrypt steps of seq (for verify_good)."""
    obj = make()
    try:
        for call in seq:
            if call == "update":
                obj.update(b"hdr")
            elif call == "decrypt":
                obj.decrypt(b"ciphe")
            elif call in ("verify", "verify_good"):
                break
            elif call == "encrypt":
                return []
        compute = getattr(obj, "_compute_mac", None) or obj._digest
        return [compute()]
    except Exception:  # no tag reachable for this sequence
        return []


pytestmark = requires.ciphers_of("mode", FACTORIES)


@pytest.mark.parametrize("mode", sorted(FACTORIES))
def test_every_sequence_of_four(mode: str) -> None:
    ours, ref = FACTORIES[mode]
    before = _afalg.kernel_operations()
    checked = 0
    for length in range(1, 5):
        for seq in itertools.product(CALLS, repeat=length):
            tag = _ref_tag(ref, seq)
            a, b = ours(), ref()
            for i, call in enumerate(seq):
                got, want = _outcome(a, call, tag), _outcome(b, call, tag)
                assert got == want, f"{mode} {seq[: i + 1]}: ours {got} != PyCryptodome {want}"
                checked += 1
    assert checked > 1000
    assert _afalg.kernel_operations() > before


@pytest.mark.parametrize("mode", sorted(FACTORIES))
@pytest.mark.parametrize("combined", ("encrypt_and_digest", "decrypt_and_verify"))
@pytest.mark.parametrize("first", (None, *CALLS))
def test_combined_methods_after_each_call(mode: str, combined: str, first: str) -> None:
    ours, ref = FACTORIES[mode]
    a, b = ours(), ref()
    tag = _ref_tag(ref, (first,)) if first else []
    if first:
        assert _outcome(a, first, tag) == _outcome(b, first, tag)
    results = []
    for obj in (a, b):
        try:
            if combined == "encrypt_and_digest":
                results.append(("ok", obj.encrypt_and_digest(b"0123456789")))
            else:
                results.append(("ok", obj.decrypt_and_verify(b"0123456789", b"\x01" * 16)))
        except Exception as e:
            results.append((type(e).__name__, str(e)))
    assert results[0] == results[1]
