"""Large inputs: 64 MiB through CBC, CTR and ChaCha20 in one call (hundreds of socket-buffer messages), with
memory bounded by the output plus a constant (tracemalloc: no copy of the input, no second copy of the
output), and with output= no allocation at all beyond a constant."""

from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import ChaCha20 as RefChaCha20

from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES, ChaCha20
from tests.support import requires

SIZE = 64 << 20
SLACK = 2 << 20  # constant overhead allowed on top of the output (scratch, Python objects)
KEY = bytes(range(32))
IV = bytes(range(16))

CASES: dict[str, tuple[Callable[[Any], Any], int]] = {
    "cbc": (lambda m: m.new(KEY, m.MODE_CBC, IV), SIZE),
    "ctr+5": (lambda m: m.new(KEY, m.MODE_CTR, nonce=IV[:8]), SIZE + 5),
    "chacha20+7": (lambda m: m.new(key=KEY, nonce=IV[:12]), SIZE + 7),
}


def _modules(name: str) -> tuple[Any, Any]:
    return (ChaCha20, RefChaCha20) if name.startswith("chacha") else (AES, RefAES)


def _peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


pytestmark = requires.kernel_alg(
    "skcipher", from_param="name", kernel={"cbc": "cbc(aes)", "ctr+5": "ctr(aes)", "chacha20+7": "chacha20"}.get
)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_large_input_memory_is_output_plus_constant(name: str) -> None:
    make, size = CASES[name]
    ours_mod, ref_mod = _modules(name)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    messages = _afalg.stats()["send"]
    out, peak = _peak(lambda: make(ours_mod).encrypt(data))
    assert isinstance(out, bytes) and len(out) == size
    assert peak <= size + SLACK, f"peak {peak} > output {size} + {SLACK}"
    assert _afalg.stats()["send"] - messages >= size // _afalg.skcipher.max_message()
    expected = hashlib.sha256(make(ref_mod).encrypt(data)).digest()
    assert hashlib.sha256(out).digest() == expected
    del out

    # Into a caller's buffer: constant memory, same result.
    target = bytearray(size)
    none, peak = _peak(lambda: make(ours_mod).encrypt(data, output=target))
    assert none is None
    assert peak <= SLACK, f"peak {peak} with output= (constant expected)"
    assert hashlib.sha256(target).digest() == expected

    # And back, in place.
    _, peak = _peak(lambda: make(ours_mod).decrypt(target, output=target))
    assert peak <= SLACK
    assert target == data
