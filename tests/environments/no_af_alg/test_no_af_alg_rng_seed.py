"""Random.new(seed=...) where socket(AF_ALG) fails with a real EAFNOSUPPORT (run as test_no_af_alg.py says): no
DRBG can be bound, so it raises UnsupportedAlgorithm carrying the kernel's reason under every policy (os.urandom
cannot take a seed); get_random_bytes follows the policy as before."""

from __future__ import annotations

import errno
import warnings

import pytest

import kcapi_hashlib
from kcapi_hashlib import Random


@pytest.mark.parametrize("policy", ["strict", "fallback"])
@pytest.mark.parametrize("kwargs", [{"seed": b"pers"}, {"seed": b"", "entropy": bytes(32)}, {"drbg": "stdrng"}])
def test_seeded_drbg_is_refused_with_the_reason(policy: str, kwargs: dict[str, object]) -> None:
    previous = kcapi_hashlib.set_policy(policy)
    try:
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="stdrng") as info:
            Random.new(**kwargs)
        reason = info.value.reason
        assert isinstance(reason, OSError) and reason.errno == errno.EAFNOSUPPORT, reason
        assert "seed" in str(info.value)
    finally:
        kcapi_hashlib.set_policy(previous)


def test_get_random_bytes_still_follows_the_policy() -> None:
    previous = kcapi_hashlib.set_policy("fallback")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
            assert len(Random.get_random_bytes(16)) == 16
            assert len(Random.new().read(16)) == 16
    finally:
        kcapi_hashlib.set_policy(previous)
