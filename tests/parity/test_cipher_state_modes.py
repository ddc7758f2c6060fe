"""Call-order state machines of the cipher objects, against PyCryptodome's.

Every sequence of up to four calls from each mode's methods (encrypt, decrypt, and seek for ChaCha20) runs on
a kcapi_hashlib object and on PyCryptodome's with the same parameters; each step must give the same result,
or the same exception type and message (TypeError for encrypt after decrypt and the like), and leave the
object in the same state (the later steps check that). Key-stream exhaustion (MessageTooLongError) is a
state matter too: a refused call processes nothing and the object goes on where it was.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import pytest
from Crypto import MessageTooLongError as RefMessageTooLong
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import DES3 as RefDES3
from Crypto.Cipher import ChaCha20 as RefChaCha20

from kcapi_hashlib.Cipher import AES, DES3, ChaCha20
from tests.kernel.test_cipher_vectors import reference_xts
from tests.support import requires

KEY = bytes(range(16))
IV = bytes(range(100, 116))
DES3_KEY = RefDES3.adjust_key_parity(bytes(range(24)))

# mode name -> (our constructor, reference constructor, data for one call)
MODES: dict[str, tuple[Callable[[], Any], Callable[[], Any], bytes]] = {
    "AES-ECB": (lambda: AES.new(KEY, AES.MODE_ECB), lambda: RefAES.new(KEY, RefAES.MODE_ECB), bytes(32)),
    "AES-CBC": (lambda: AES.new(KEY, AES.MODE_CBC, IV), lambda: RefAES.new(KEY, RefAES.MODE_CBC, IV), bytes(32)),
    "AES-CTR": (
        lambda: AES.new(KEY, AES.MODE_CTR, nonce=IV[:8]),
        lambda: RefAES.new(KEY, RefAES.MODE_CTR, nonce=IV[:8]),
        bytes(21),
    ),
    "AES-CFB8": (lambda: AES.new(KEY, AES.MODE_CFB, IV), lambda: RefAES.new(KEY, RefAES.MODE_CFB, IV), bytes(5)),
    "AES-CFB128": (
        lambda: AES.new(KEY, AES.MODE_CFB, IV, segment_size=128),
        lambda: RefAES.new(KEY, RefAES.MODE_CFB, IV, segment_size=128),
        bytes(21),
    ),
    "AES-OFB": (lambda: AES.new(KEY, AES.MODE_OFB, IV), lambda: RefAES.new(KEY, RefAES.MODE_OFB, IV), bytes(21)),
    "DES3-CBC": (
        lambda: DES3.new(DES3_KEY, DES3.MODE_CBC, IV[:8]),
        lambda: RefDES3.new(DES3_KEY, RefDES3.MODE_CBC, IV[:8]),
        bytes(16),
    ),
    "ChaCha20": (
        lambda: ChaCha20.new(key=KEY * 2, nonce=IV[:12]),
        lambda: RefChaCha20.new(key=KEY * 2, nonce=IV[:12]),
        bytes(70),
    ),
    "XChaCha20": (
        lambda: ChaCha20.new(key=KEY * 2, nonce=IV + IV[:8]),
        lambda: RefChaCha20.new(key=KEY * 2, nonce=IV + IV[:8]),
        bytes(70),
    ),
}


def _outcome(obj: Any, step: str, data: bytes) -> tuple[str, Any]:
    try:
        if step == "seek":
            return "ok", obj.seek(100)
        return "ok", getattr(obj, step)(data)
    except Exception as e:
        return type(e).__name__, str(e)


def _methods(name: str) -> tuple[str, ...]:
    return ("encrypt", "decrypt", "seek") if "ChaCha" in name else ("encrypt", "decrypt")


def _sequences(name: str) -> list[tuple[str, ...]]:
    methods = _methods(name)
    return [seq for n in range(1, 5) for seq in itertools.product(methods, repeat=n)]


pytestmark = [
    *requires.ciphers_of("name", MODES),
    *requires.cipher_code("AES.MODE_XTS", only="test_xts_state"),
    *requires.cipher_code("AES.MODE_CTR AES.MODE_ECB", only="test_ctr_exhaustion"),
    *requires.cipher_code("DES3.MODE_CTR", only="test_ctr_exhaustion_des3"),
    requires.kernel_alg(
        "skcipher", from_param="nonce_len", kernel=lambda n: "xchacha20" if n == 24 else "chacha20",
        only="test_chacha20_exhaustion_and_seek",
    ),
]  # fmt: skip


@pytest.mark.parametrize("name", list(MODES))
def test_every_call_sequence(name: str) -> None:
    ours_new, ref_new, data = MODES[name]
    checked = 0
    for seq in _sequences(name):
        ours, ref = ours_new(), ref_new()
        for step in seq:
            got, want = _outcome(ours, step, data), _outcome(ref, step, data)
            assert got == want, f"{name} {seq} at {step}: {got} != {want}"
            checked += 1
    assert checked == sum(len(s) for s in _sequences(name))


@pytest.mark.parametrize("name", ["AES-CBC", "AES-CTR", "AES-OFB", "ChaCha20"])
def test_refused_call_changes_nothing(name: str) -> None:
    """A call refused for its data (str) still sets the next-method state, as in PyCryptodome."""
    ours_new, ref_new, data = MODES[name]
    ours, ref = ours_new(), ref_new()
    assert _outcome(ours, "encrypt", "text") == _outcome(ref, "encrypt", "text")  # type: ignore[arg-type]
    assert _outcome(ours, "decrypt", data) == _outcome(ref, "decrypt", data)
    assert _outcome(ours, "encrypt", data) == _outcome(ref, "encrypt", data)


def test_xts_state() -> None:
    key = bytes(range(32))
    c = AES.new(key, AES.MODE_XTS_UNITS, tweak=5)
    unit = bytes(range(40))
    assert c.encrypt(unit) == reference_xts(key, (5).to_bytes(16, "little"), unit, True)
    assert c.encrypt(unit) == reference_xts(key, (6).to_bytes(16, "little"), unit, True)  # the next data unit
    with pytest.raises(TypeError, match=r"decrypt\(\) cannot be called after encrypt\(\)"):
        c.decrypt(unit)
    d = AES.new(key, AES.MODE_XTS_UNITS, tweak=(1 << 128) - 1)
    d.decrypt(unit)
    # The data unit number wraps around modulo 2**128 (IEEE 1619 5.1: a 128-bit value).
    assert d.decrypt(unit) == reference_xts(key, bytes(16), unit, False)
    with pytest.raises(TypeError, match=r"encrypt\(\) cannot be called after decrypt\(\)"):
        d.encrypt(unit)
    assert c.tweak == (5).to_bytes(16, "little")


# --- key-stream exhaustion --------------------------------------------------------------------------------


@pytest.mark.parametrize("nonce_len", [15, 14])
def test_ctr_exhaustion(nonce_len: int) -> None:
    nonce = bytes(nonce_len)
    total = 16 << (8 * (16 - nonce_len))
    ours = AES.new(KEY, AES.MODE_CTR, nonce=nonce, initial_value=7)
    ref = RefAES.new(KEY, RefAES.MODE_CTR, nonce=nonce, initial_value=7)
    head = total - 20
    assert ours.encrypt(bytes(head)) == ref.encrypt(bytes(head))
    for n in (21, 40, 20, 1):  # refused (nothing processed), refused, exactly to the end, refused
        got, want = _outcome(ours, "encrypt", bytes(n)), _outcome(ref, "encrypt", bytes(n))
        assert got == want
    with pytest.raises(RefMessageTooLong):  # PyCryptodome is loaded: its exception class is raised
        ours.encrypt(b"x")
    with pytest.raises(OverflowError):  # ... which is also an OverflowError and a ValueError
        ours.encrypt(b"x")


def test_ctr_exhaustion_des3() -> None:
    ours = DES3.new(DES3_KEY, DES3.MODE_CTR, nonce=bytes(7))
    ref = RefDES3.new(DES3_KEY, RefDES3.MODE_CTR, nonce=bytes(7))
    assert ours.encrypt(bytes(8 * 255)) == ref.encrypt(bytes(8 * 255))
    for n in (9, 8, 1):
        assert _outcome(ours, "encrypt", bytes(n)) == _outcome(ref, "encrypt", bytes(n))


@pytest.mark.parametrize("nonce_len", [8, 12, 24])
def test_chacha20_exhaustion_and_seek(nonce_len: int) -> None:
    key, nonce = KEY * 2, IV[:nonce_len] if nonce_len <= 16 else IV + IV[:8]
    ours, ref = ChaCha20.new(key=key, nonce=nonce), RefChaCha20.new(key=key, nonce=nonce)
    blocks = 1 << (64 if nonce_len == 8 else 32)
    end = blocks * 64
    for position in (end - 10, end, end + 1, -1, blocks * 64 + 64, 1 << 90):
        assert _outcome(ours, "seek", b"") == _outcome(ref, "seek", b"")
        got = _seek(ours, position)
        want = _seek(ref, position)
        assert got == want, position
    assert _seek(ours, end - 10) == _seek(ref, end - 10) == ("ok", None)
    for n in (11, 5, 6, 1):
        assert _outcome(ours, "encrypt", bytes(n)) == _outcome(ref, "encrypt", bytes(n))


def _seek(obj: Any, position: Any) -> tuple[str, Any]:
    try:
        return "ok", obj.seek(position)
    except Exception as e:
        return type(e).__name__, str(e)
