"""Bad input, every kind of buffer: a generated matrix of (cipher/random entry point x value) against
PyCryptodome 4.4, in the same interpreter, under the fallback policy (strict refusals are out of the picture).

Each entry point is called with the same value on kcapi_hashlib and on PyCryptodome. The outcomes must agree:
both raise the same exception type (ours may be a subclass), or both return the same result.

The oracle is PyCryptodome called with the value itself, except where PyCryptodome 4.4 is itself wrong about a
buffer whose items are not bytes (memoryview(array('I')), 2-D casts) and gives an answer for the wrong bytes or
fails an internal assertion: for AAD (update()) and tags (verify()), which it hashes, the oracle is
PyCryptodome given a flat byte view of the same bytes (lengths in bytes, always). Those cases are listed as
"PyCryptodome differs" in the summary that `python -m tests.parity.test_cipher_bad_input` prints.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, Callable

try:
    import pytest
except ImportError:  # pragma: no cover - `python -m` on a Python without pytest
    pytest = None  # type: ignore[assignment]

from Crypto import Random as CRandom
from Crypto.Cipher import AES as CAES
from Crypto.Cipher import DES3 as CDES3
from Crypto.Cipher import ChaCha20 as CChaCha20
from Crypto.Cipher import ChaCha20_Poly1305 as CCP
from Crypto.Util import Counter as CCounter

import kcapi_hashlib
from kcapi_hashlib import Random as KRandom
from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES as KAES
from kcapi_hashlib.Cipher import DES3 as KDES3
from kcapi_hashlib.Cipher import ChaCha20 as KChaCha20
from kcapi_hashlib.Cipher import ChaCha20_Poly1305 as KCP
from kcapi_hashlib.Util import Counter as KCounter

OURS = SimpleNamespace(AES=KAES, DES3=KDES3, ChaCha20=KChaCha20, CP=KCP, Random=KRandom, Counter=KCounter)
REF = SimpleNamespace(AES=CAES, DES3=CDES3, ChaCha20=CChaCha20, CP=CCP, Random=CRandom, Counter=CCounter)

K16 = bytes(range(16))
K32 = bytes(range(32))
DES3_KEY = bytes(range(1, 25))
N12 = bytes(range(12))


# --- values -----------------------------------------------------------------------------------------------


def buffers(n: int, seed: int = 7) -> Iterator[tuple[str, Any]]:
    """Every kind of bytes-like holding n bytes."""
    return views_of(bytes((seed + 13 * i) % 256 for i in range(n)))


def views_of(b: bytes) -> Iterator[tuple[str, Any]]:
    """Every kind of bytes-like holding the bytes b (those with wider items where len(b) allows)."""
    n = len(b)
    yield "bytes", b
    yield "bytearray", bytearray(b)
    yield "memoryview", memoryview(b)
    yield "memoryview-rw", memoryview(bytearray(b))
    yield "array-B", array("B", b)
    if n % 4 == 0:
        yield "array-I", array("I", b)
        yield "mv-array-I", memoryview(array("I", b))
    if n % 2 == 0 and n:
        yield "mv-cast-H", memoryview(b).cast("H")
        yield "mv-2d", memoryview(b).cast("B", (2, n // 2))
    if n % 8 == 0 and n:
        yield "mv-cast-Q", memoryview(bytearray(b)).cast("Q")
    yield "mv-noncontig", memoryview(b + b)[::2]
    yield "mv-offset", memoryview(b"\x00" + b)[1:]


def lengths(n: int) -> Iterator[tuple[str, Any]]:
    yield "empty", b""
    yield "short", bytes(max(n - 1, 0))
    yield "long", bytes(n + 1)
    yield "much-longer", bytes(n + 64)


NOT_BUFFERS: list[tuple[str, Any]] = [
    ("str", "abcdefghijklmnop"),
    ("None", None),
    ("int", 16),
    ("huge-int", 2**100),
    ("bool", True),
    ("float", 16.0),
    ("list", list(range(16))),
    ("object", object()),
]

INTS: list[tuple[str, Any]] = [
    ("int-0", 0),
    ("int-neg", -1),
    ("int-8", 8),
    ("int-12", 12),
    ("int-16", 16),
    ("int-odd", 7),
    ("huge-int", 2**100),
    ("bool", True),
    ("float", 16.0),
    ("str", "16"),
    ("bytes", b"16"),
    ("None", None),
    ("list", [16]),
]


def data_values(n: int) -> list[tuple[str, Any]]:
    return [*buffers(n), *lengths(n), *NOT_BUFFERS]


# --- entry points -----------------------------------------------------------------------------------------

Call = Callable[[Any, Any], Any]


def _aead(m: Any, mode: str) -> Any:
    if mode == "gcm":
        return m.AES.new(K16, m.AES.MODE_GCM, nonce=N12)
    if mode == "gcm16":
        return m.AES.new(K16, m.AES.MODE_GCM, nonce=bytes(16))
    if mode == "ccm":
        return m.AES.new(K16, m.AES.MODE_CCM, nonce=N12[:11])
    return m.CP.new(key=K32, nonce=N12)


def _tag(m: Any, mode: str, aad: bytes = b"hdr") -> tuple[bytes, bytes]:
    c = _aead(REF, mode)
    c.update(aad)
    ct, tag = c.encrypt_and_digest(b"0123456789abcdef" * 3)
    return ct, tag


def _update_then(mode: str) -> Call:
    def f(m: Any, v: Any) -> Any:
        c = _aead(m, mode)
        c.update(v)
        return c.encrypt_and_digest(b"some data")

    return f


def _encrypt_aead(mode: str, method: str) -> Call:
    def f(m: Any, v: Any) -> Any:
        c = _aead(m, mode)
        c.update(b"hdr")
        out = getattr(c, method)(v)
        return out, (c.digest() if method == "encrypt" else None)

    return f


def _verify(mode: str, how: str) -> Call:
    def f(m: Any, v: Any) -> Any:
        ct, _ = _tag(m, mode)
        c = _aead(m, mode)
        c.update(b"hdr")
        if how == "dav":
            return c.decrypt_and_verify(ct, v)
        c.decrypt(ct)
        return c.verify(v)

    return f


def _method(make: Callable[[Any], Any], name: str) -> Call:
    def f(m: Any, v: Any) -> Any:
        return getattr(make(m), name)(v)

    return f


def _output(make: Callable[[Any], Any], size: int) -> Call:
    def f(m: Any, v: Any) -> Any:
        c = make(m)
        c.encrypt(bytes(size), output=v)
        return bytes(v) if isinstance(v, (bytearray, memoryview)) else None

    return f


BLOCK_MODES: dict[str, Callable[[Any], Any]] = {
    "ecb": lambda m: m.AES.new(K16, m.AES.MODE_ECB),
    "cbc": lambda m: m.AES.new(K16, m.AES.MODE_CBC, iv=bytes(16)),
    "ctr": lambda m: m.AES.new(K16, m.AES.MODE_CTR, nonce=bytes(8)),
    "cfb": lambda m: m.AES.new(K16, m.AES.MODE_CFB, iv=bytes(16)),
    "cfb128": lambda m: m.AES.new(K16, m.AES.MODE_CFB, iv=bytes(16), segment_size=128),
    "ofb": lambda m: m.AES.new(K16, m.AES.MODE_OFB, iv=bytes(16)),
    "des3-cbc": lambda m: m.DES3.new(DES3_KEY, m.DES3.MODE_CBC, iv=bytes(8)),
    "chacha20": lambda m: m.ChaCha20.new(key=K32, nonce=N12),
}

# name: (call, values, oracle flattens multi-byte views)
ENTRIES: dict[str, tuple[Call, list[tuple[str, Any]], bool]] = {}


def _add(name: str, call: Call, values: list[tuple[str, Any]], flatten: bool = False) -> None:
    ENTRIES[name] = (call, values, flatten)


for _n in (16, 24, 32):
    _add(f"AES.new key[{_n}]", lambda m, v: m.AES.new(v, m.AES.MODE_ECB).encrypt(bytes(16)), data_values(_n))
_add("DES3.new key", lambda m, v: m.DES3.new(v, m.DES3.MODE_ECB).encrypt(bytes(8)), data_values(24))
_add("CBC iv", lambda m, v: m.AES.new(K16, m.AES.MODE_CBC, iv=v).encrypt(bytes(32)), data_values(16))
_add("CFB iv", lambda m, v: m.AES.new(K16, m.AES.MODE_CFB, iv=v).encrypt(bytes(20)), data_values(16))
_add("OFB iv", lambda m, v: m.AES.new(K16, m.AES.MODE_OFB, iv=v).encrypt(bytes(20)), data_values(16))
_add(
    "CFB segment_size",
    lambda m, v: m.AES.new(K16, m.AES.MODE_CFB, iv=bytes(16), segment_size=v).encrypt(b"x" * 20),
    INTS,
)
_add("CTR nonce", lambda m, v: m.AES.new(K16, m.AES.MODE_CTR, nonce=v).encrypt(bytes(40)), data_values(8))
_add(
    "CTR initial_value",
    lambda m, v: m.AES.new(K16, m.AES.MODE_CTR, nonce=bytes(8), initial_value=v).encrypt(bytes(40)),
    [*data_values(8), *INTS],
)
_add(
    "CTR counter nbits", lambda m, v: m.AES.new(K16, m.AES.MODE_CTR, counter=m.Counter.new(v)).encrypt(bytes(40)), INTS
)
_add(
    "CTR counter prefix",
    lambda m, v: m.AES.new(K16, m.AES.MODE_CTR, counter=m.Counter.new(64, prefix=v)).encrypt(bytes(40)),
    data_values(8),
)
for _n in (16, 32):
    _add(
        f"GCM key[{_n}]",
        lambda m, v: m.AES.new(v, m.AES.MODE_GCM, nonce=N12).encrypt_and_digest(b"x" * 20),
        data_values(_n),
    )
    _add(
        f"CCM key[{_n}]",
        lambda m, v: m.AES.new(v, m.AES.MODE_CCM, nonce=N12[:11]).encrypt_and_digest(b"x" * 20),
        data_values(_n),
    )
_add("GCM nonce", lambda m, v: m.AES.new(K16, m.AES.MODE_GCM, nonce=v).encrypt_and_digest(b"x" * 20), data_values(12))
_add("GCM mac_len", lambda m, v: m.AES.new(K16, m.AES.MODE_GCM, nonce=N12, mac_len=v).encrypt_and_digest(b"x"), INTS)
_add("CCM nonce", lambda m, v: m.AES.new(K16, m.AES.MODE_CCM, nonce=v).encrypt_and_digest(b"x" * 20), data_values(8))
_add(
    "CCM mac_len", lambda m, v: m.AES.new(K16, m.AES.MODE_CCM, nonce=N12[:11], mac_len=v).encrypt_and_digest(b"x"), INTS
)
_add(
    "CCM msg_len",
    lambda m, v: m.AES.new(K16, m.AES.MODE_CCM, nonce=N12[:11], msg_len=v).encrypt_and_digest(bytes(16)),
    INTS,
)
_add(
    "CCM assoc_len",
    lambda m, v: m.AES.new(K16, m.AES.MODE_CCM, nonce=N12[:11], assoc_len=v).update(bytes(16)).encrypt_and_digest(b"x"),
    INTS,
)
_add("ChaCha20 key", lambda m, v: m.ChaCha20.new(key=v, nonce=N12).encrypt(bytes(70)), data_values(32))
_add(
    "ChaCha20 nonce",
    lambda m, v: m.ChaCha20.new(key=K32, nonce=v).encrypt(bytes(70)),
    [*data_values(8), *data_values(24)[:6]],
)
_add(
    "ChaCha20 seek",
    lambda m, v: (lambda c: (c.seek(v), c.encrypt(bytes(70)))[1])(m.ChaCha20.new(key=K32, nonce=N12)),
    INTS,
)
_add("ChaCha20_Poly1305 key", lambda m, v: m.CP.new(key=v, nonce=N12).encrypt_and_digest(b"x" * 20), data_values(32))
_add(
    "ChaCha20_Poly1305 nonce",
    lambda m, v: m.CP.new(key=K32, nonce=v).encrypt_and_digest(b"x" * 20),
    [*data_values(12), *(("8-" + k, v) for k, v in buffers(8)), *(("24-" + k, v) for k, v in buffers(24))],
)
for _mode, _make in BLOCK_MODES.items():
    _size = 32 if _mode not in ("des3-cbc",) else 16
    _add(f"{_mode} encrypt", _method(_make, "encrypt"), data_values(_size))
    _add(f"{_mode} decrypt", _method(_make, "decrypt"), data_values(_size))
    _add(f"{_mode} output=", _output(_make, _size), data_values(_size))
for _mode in ("gcm", "gcm16", "ccm", "chacha20-poly1305"):
    _add(f"{_mode} update", _update_then(_mode), data_values(32), flatten=True)
    _add(f"{_mode} encrypt", _encrypt_aead(_mode, "encrypt"), data_values(32))
    _add(f"{_mode} decrypt", _encrypt_aead(_mode, "decrypt"), data_values(32))
    _add(f"{_mode} verify", _verify(_mode, "verify"), data_values(16), flatten=True)
    _add(f"{_mode} decrypt_and_verify", _verify(_mode, "dav"), data_values(16), flatten=True)
_add("get_random_bytes n", lambda m, v: len(m.Random.get_random_bytes(v)), INTS[:9] + INTS[10:])
_add("Random.new().read n", lambda m, v: len(m.Random.new().read(v)), INTS[:9] + INTS[10:])
_add("Counter.new nbits", lambda m, v: m.Counter.new(v), INTS)
_add("Counter.new initial_value", lambda m, v: m.Counter.new(64, initial_value=v), INTS)

# The right tags for the verify entries are in their value lists as well.
for _mode in ("gcm", "gcm16", "ccm", "chacha20-poly1305"):
    _good = _tag(REF, _mode)[1]
    for _how in ("verify", "decrypt_and_verify"):
        ENTRIES[f"{_mode} {_how}"][1].extend(
            [("good-tag", _good), ("good-tag-bytearray", bytearray(_good))]
            + [(f"good-tag-{k}", v) for k, v in views_of(_good) if k.startswith(("mv", "array"))]
        )


def _flat(v: Any) -> Any:
    """The same bytes as a flat memoryview, for a memoryview whose items are not bytes; an array of any
    type code as array('B') of the same bytes (PyCryptodome decides about arrays by type, not item size)."""
    if isinstance(v, memoryview) and (v.format != "B" or v.ndim != 1) and v.c_contiguous:
        return memoryview(v.tobytes())
    if isinstance(v, array) and v.typecode != "B":
        return array("B", v.tobytes())
    return v


# Entries where None means "a random value": only whether both return is compared.
RANDOM_IF_NONE = (
    "CBC iv",
    "CFB iv",
    "OFB iv",
    "CTR nonce",
    "GCM nonce",
    "CCM nonce",
    "ChaCha20 nonce",
    "ChaCha20_Poly1305 nonce",
)


# --- running ----------------------------------------------------------------------------------------------


def _outcome(call: Call, m: Any, v: Any) -> tuple[str, Any]:
    try:
        return "returns", call(m, v)
    except Exception as e:
        return "raises", (type(e), re.sub(r"0x[0-9a-f]+", "0x?", str(e)))


def _agree(ours: tuple[str, Any], ref: tuple[str, Any]) -> bool:
    """The same result, or exceptions of the same type (ours may be a subclass) with the same text."""
    if ours[0] != ref[0]:
        return False
    if ours[0] == "raises":
        return bool(issubclass(ours[1][0], ref[1][0])) and ours[1][1] == ref[1][1]
    return bool(ours[1] == ref[1])


def _cases() -> list[tuple[str, str]]:
    return [(entry, kind) for entry, (_, values, _) in ENTRIES.items() for kind, _ in values]


def _value(entry: str, kind: str) -> Any:
    for k, v in ENTRIES[entry][1]:
        if k == kind:
            return v
    raise KeyError(kind)


def run_case(entry: str, kind: str) -> tuple[bool, bool, str]:
    """(agrees with the oracle, the oracle is not PyCryptodome's raw answer, description)."""
    call, _, flatten = ENTRIES[entry]
    v = _value(entry, kind)
    ours = _outcome(call, OURS, v)
    raw = _outcome(call, REF, v)
    # Without AF_ALG every object is PyCryptodome's own (the fallback policy): then it is its own oracle.
    oracle = _outcome(call, REF, _flat(v)) if flatten and _afalg.af_alg_status() is None else raw
    differs = not _agree(oracle, raw)
    if v is None and entry in RANDOM_IF_NONE:
        return ours[0] == oracle[0] == "returns", differs, f"{entry} [None]: ours {ours[0]} / oracle {oracle[0]}"
    return _agree(ours, oracle), differs, f"{entry} [{kind}]: ours {ours!r:.120} / oracle {oracle!r:.120}"


if pytest is not None:

    @pytest.fixture
    def fallback() -> Iterator[None]:
        previous = kcapi_hashlib.get_policy()
        kcapi_hashlib.set_policy("fallback")
        try:
            yield
        finally:
            kcapi_hashlib.set_policy(previous)

    @pytest.mark.filterwarnings("ignore::kcapi_hashlib.KernelFallbackWarning")
    @pytest.mark.parametrize("entry, kind", _cases())
    def test_same_outcome_as_pycryptodome(fallback: None, entry: str, kind: str) -> None:
        ok, _, what = run_case(entry, kind)
        assert ok, what

    def test_a_valid_call_after_the_bad_ones_succeeds(fallback: None) -> None:
        """Nothing a refused call left behind (bytes queued in a pooled op socket) breaks the next call."""
        for name, make in BLOCK_MODES.items():
            for v in (memoryview(array("I", bytes(32))), memoryview(bytes(32)).cast("B", (2, 16))):
                _outcome(_method(make, "encrypt"), OURS, v)
            assert make(OURS).encrypt(bytes(32)) == make(REF).encrypt(bytes(32)), name
        for mode in ("gcm", "gcm16", "ccm", "chacha20-poly1305"):
            for v in (memoryview(array("I", bytes(32))), memoryview(bytes(32)).cast("B", (2, 16))):
                _outcome(_update_then(mode), OURS, v)
                _outcome(_encrypt_aead(mode, "encrypt"), OURS, v)
            assert _update_then(mode)(OURS, b"aad") == _update_then(mode)(REF, b"aad"), mode


def main() -> int:
    import warnings

    warnings.simplefilter("ignore")
    kcapi_hashlib.set_policy("fallback")
    total, bad, differs = 0, Counter[str](), Counter[str]()
    failures: list[str] = []
    for entry, kind in _cases():
        ok, d, what = run_case(entry, kind)
        total += 1
        differs[entry] += d
        if not ok:
            bad[entry] += 1
            failures.append(what)
    print(
        f"{total} cases, {total - sum(bad.values())} agree, {sum(bad.values())} disagree; "
        f"PyCryptodome differs from its own flat-bytes answer in {sum(differs.values())}"
    )
    for entry, n in sorted(bad.items()):
        print(f"  {n:3d}  {entry}")
    for line in failures[: int(sys.argv[1]) if len(sys.argv) > 1 else 40]:
        print("   ", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
