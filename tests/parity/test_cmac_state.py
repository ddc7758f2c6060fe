"""State-machine tests of CMAC and PyCryptodome-style HMAC objects: live kcapi_hashlib.Hash objects and their
PyCryptodome twins driven through update, copy, digest, verify in any order, with update_after_digest on or
off (then update after digest must fail the same way for both)."""

from __future__ import annotations

from typing import Any

from Crypto.Cipher import AES, DES3
from Crypto.Hash import CMAC as PyCMAC
from Crypto.Hash import HMAC as PyHMAC
from Crypto.Hash import SHA3_256 as PySHA3_256
from Crypto.Hash import SHA256 as PySHA256
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule

from kcapi_hashlib.Hash import CMAC, HMAC, SHA3_256, SHA256
from tests.support import requires

CMAC_KEYS = [(bytes(range(16)), AES), (b"\x01" * 16 + b"\x02" * 16, AES), (bytes(range(24)), DES3)]
HMAC_MODULES = [(SHA256, PySHA256), (SHA3_256, PySHA3_256)]
pytestmark = [
    requires.kernel_alg("hash", ("cmac(aes)", "cmac(des3_ede)")),
    requires.hash_names("hmac:sha256", "hmac:sha3_256"),
]


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except (TypeError, ValueError) as e:
        return (type(e).__name__, str(e))


class MACObjects(RuleBasedStateMachine):
    pairs = Bundle("pairs")

    @rule(target=pairs, which=st.integers(0, len(CMAC_KEYS) - 1), uad=st.booleans(), msg=st.binary(max_size=40))
    def new_cmac(self, which: int, uad: bool, msg: bytes) -> tuple[Any, Any]:
        key, mod = CMAC_KEYS[which]
        return (
            CMAC.new(key, msg, ciphermod=mod, update_after_digest=uad),
            PyCMAC.new(key, msg, ciphermod=mod, update_after_digest=uad),
        )

    @rule(
        target=pairs,
        which=st.integers(0, len(HMAC_MODULES) - 1),
        key=st.binary(max_size=80),
        msg=st.binary(max_size=40),
    )
    def new_hmac(self, which: int, key: bytes, msg: bytes) -> tuple[Any, Any]:
        ours, theirs = HMAC_MODULES[which]
        return HMAC.new(key, msg, ours), PyHMAC.new(key, msg, theirs)

    @rule(pair=pairs, data=st.binary(max_size=70) | st.integers(60_000, 70_000))
    def update(self, pair: tuple[Any, Any], data: Any) -> None:
        chunk = data if isinstance(data, bytes) else b"c" * data
        ours = _outcome(lambda: pair[0].update(chunk) is pair[0])
        assert ours == _outcome(lambda: pair[1].update(chunk) is pair[1])

    @rule(target=pairs, pair=pairs)
    def copy(self, pair: tuple[Any, Any]) -> tuple[Any, Any]:
        return pair[0].copy(), pair[1].copy()

    @rule(pair=pairs)
    def digest(self, pair: tuple[Any, Any]) -> None:
        assert pair[0].digest() == pair[1].digest()
        assert pair[0].hexdigest() == pair[1].hexdigest()

    @rule(pair=pairs, good=st.booleans())
    def verify(self, pair: tuple[Any, Any], good: bool) -> None:
        tag = pair[1].digest() if good else bytes(pair[1].digest_size)
        assert _outcome(lambda: pair[0].verify(tag)) == _outcome(lambda: pair[1].verify(tag))
        assert _outcome(lambda: pair[0].hexverify(tag.hex())) == _outcome(lambda: pair[1].hexverify(tag.hex()))


MACObjects.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_mac_objects = MACObjects.TestCase
