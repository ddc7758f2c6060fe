"""Differential property tests of CMAC: kcapi_hashlib.Hash.CMAC (kernel cmac(aes), cmac(des3_ede), cmac(des),
cmac(blowfish), cmac(cast5)) against PyCryptodome's CMAC on random keys, random update chunkings, copy() and
digest() at random points, truncated tags, and update after digest (refused, or allowed with
update_after_digest=True, exactly as PyCryptodome)."""

from __future__ import annotations

from typing import Any

import pytest
from Crypto.Cipher import AES, CAST, DES, DES3, Blowfish
from Crypto.Hash import CMAC as PyCMAC
from hypothesis import assume, given
from hypothesis import strategies as st

from kcapi_hashlib.Cipher import AES as KAES
from kcapi_hashlib.Cipher import DES3 as KDES3
from kcapi_hashlib.Hash import CMAC
from tests.support import requires

_KEY_SIZES: dict[str, list[int]] = {"AES": [16, 24, 32], "DES3": [16, 24], "DES": [8], "Blowfish": [4, 16, 56],
                                    "CAST": [5, 16]}  # fmt: skip
_MODULES = {"AES": AES, "DES3": DES3, "DES": DES, "Blowfish": Blowfish, "CAST": CAST}
# the kernel's cmac(<cipher>) per module (Hash/CMAC.py _CIPHERS)
_KERNEL = {"AES": "aes", "DES3": "des3_ede", "DES": "des", "Blowfish": "blowfish", "CAST": "cast5"}
pytestmark = requires.kernel_alg("hash", from_param="cipher", kernel=lambda c: f"cmac({_KERNEL[c]})")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), st.binary(max_size=100)),
        st.tuples(st.just("update"), st.integers(min_value=60_000, max_value=90_000)),
        st.tuples(st.just("digest")),
        st.tuples(st.just("copy")),
    ),
    max_size=8,
)


def _data(arg: Any) -> bytes:
    return arg if isinstance(arg, bytes) else bytes([arg & 0xFF]) * arg


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except (TypeError, ValueError) as e:
        return (type(e).__name__, str(e))


@pytest.mark.parametrize("cipher", sorted(_KEY_SIZES))
@given(data=st.data(), program=steps, update_after_digest=st.booleans(), ours_module=st.booleans())
def test_against_pycryptodome(
    cipher: str, data: Any, program: list[tuple[Any, ...]], update_after_digest: bool, ours_module: bool
) -> None:
    size = data.draw(st.sampled_from(_KEY_SIZES[cipher]))
    key = data.draw(st.binary(min_size=size, max_size=size))
    if cipher == "DES3":
        assume(_outcome(lambda: DES3.adjust_key_parity(key))[0] == "ok")  # not a degenerate key
    mod = _MODULES[cipher]
    mac_len = data.draw(st.integers(4, mod.block_size))
    msg = data.draw(st.one_of(st.none(), st.binary(max_size=64)))
    ciphermod = {"AES": KAES, "DES3": KDES3}.get(cipher, mod) if ours_module else mod
    ours = CMAC.new(key, msg, ciphermod, mac_len=mac_len, update_after_digest=update_after_digest)
    ref = PyCMAC.new(key, msg, mod, mac_len=mac_len, update_after_digest=update_after_digest)
    assert ours.digest_size == ref.digest_size == mac_len
    for step in program:
        if step[0] == "update":
            chunk = _data(step[1])
            assert _outcome(lambda o=ours, c=chunk: o.update(c) and None) == _outcome(
                lambda r=ref, c=chunk: r.update(c) and None
            )
        elif step[0] == "digest":
            assert ours.digest() == ref.digest()
        else:
            ours, ref = ours.copy(), ref.copy()
    assert ours.hexdigest() == ref.hexdigest()
    ours.verify(ref.digest())
    ours.hexverify(ref.hexdigest())
