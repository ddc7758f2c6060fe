"""State-machine tests of HMAC objects: a pool of live kcapi_hashlib.hmac objects (several keys, several
hashes, some streaming to the kernel) and their stdlib twins, driven by hypothesis through update, copy,
digest and hexdigest in any order, interleaved across objects that share cached keyed tfms, while the key
cache is cleared or churned under them. Every object must always agree with its twin."""

from __future__ import annotations

import hmac as std_hmac
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from kcapi_hashlib import hmac as khmac
from kcapi_hashlib._afalg import keyed
from tests.support import requires

KEYS = [b"", b"k", b"key-" * 16, b"\xaa" * 200]
NAMES = ["sha256", "sha1", "sha512", "sha3_256"]
pytestmark = requires.hash_names(*(f"hmac:{n}" for n in NAMES))


class HMACObjects(RuleBasedStateMachine):
    pairs = Bundle("pairs")

    def __init__(self) -> None:
        super().__init__()
        self.live: list[tuple[Any, Any]] = []
        self.churn = 0

    @rule(target=pairs, key=st.sampled_from(KEYS), name=st.sampled_from(NAMES), msg=st.none() | st.binary(max_size=50))
    def new(self, key: bytes, name: str, msg: Any) -> tuple[Any, Any]:
        pair = (khmac.new(key, msg, name), std_hmac.new(key, msg, name))
        self.live.append(pair)
        return pair

    @rule(pair=pairs, data=st.binary(max_size=100) | st.integers(60_000, 80_000))
    def update(self, pair: tuple[Any, Any], data: Any) -> None:
        chunk = data if isinstance(data, bytes) else b"z" * data
        pair[0].update(chunk)
        pair[1].update(chunk)

    @rule(target=pairs, pair=pairs)
    def copy(self, pair: tuple[Any, Any]) -> tuple[Any, Any]:
        twin = (pair[0].copy(), pair[1].copy())
        self.live.append(twin)
        return twin

    @rule(pair=pairs)
    def digest(self, pair: tuple[Any, Any]) -> None:
        assert pair[0].digest() == pair[1].digest()

    @rule(pair=consumes(pairs))
    def drop(self, pair: tuple[Any, Any]) -> None:
        assert pair[0].hexdigest() == pair[1].hexdigest()
        self.live = [p for p in self.live if p is not pair]

    @rule()
    def clear_key_cache(self) -> None:
        khmac.clear_key_cache()
        assert keyed.cache_len() == 0

    @rule()
    def churn_key_cache(self) -> None:
        # evict every cached key (dropped from the cache; objects that hold them keep them, a tfm is never re-keyed)
        for _ in range(keyed.CACHE_SIZE):
            self.churn += 1
            key = self.churn.to_bytes(8, "big")
            assert khmac.digest(key, b"m", "sha256") == std_hmac.digest(key, b"m", "sha256")

    @invariant()
    def names_and_sizes(self) -> None:
        for ours, ref in self.live[-3:]:
            assert (ours.name, ours.digest_size) == (ref.name, ref.digest_size)
            # The stdlib's copy() does not copy block_size (AttributeError on a copy); ours keeps it.
            assert ours.block_size == getattr(ref, "block_size", ours.block_size)


HMACObjects.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_hmac_objects = HMACObjects.TestCase
