"""Random.new(seed=...): a kernel DRBG instance of its own, seeded with ALG_SET_KEY (crypto/algif_rng.c rng_setkey
-> crypto_rng_reset -> crypto/drbg.c drbg_kcapi_seed: the seed is the personalization string) and, where the
kernel has the CAVP interface, ALG_SET_DRBG_ENTROPY (rng_setentropy: then the output is reproducible).

Each test asserts what this kernel does: without CONFIG_CRYPTO_USER_API_RNG_CAVP (Debian's kernels) entropy= is
refused with ENOPROTOOPT and the reason; with it, two instances with the same entropy and seed give the same bytes.
"""

from __future__ import annotations

import errno

import pytest

import kcapi_hashlib
from kcapi_hashlib import accounting, reset_accounting
from kcapi_hashlib.Random import SeededDRBG, get_random_bytes, new
from tests.support import requires

pytestmark = [requires.kernel_alg("rng", "stdrng")]


def _recvs() -> int:
    return sum(k["operations"] for k in accounting()["kernel"] if k["type"] == "rng")


def test_seeded_instance_reads_from_its_own_drbg() -> None:
    reset_accounting()
    with new(seed=b"personalization") as a, new(seed=b"personalization") as b:
        assert isinstance(a, SeededDRBG) and a.name == "stdrng"
        x, y = a.read(300), b.read(300)
        assert len(x) == len(y) == 300
        # The DRBG mixes in its own entropy (drbg_seed pulls get_random_bytes): the seed does not fix the output.
        assert x != y
        assert a.read(0) == b""
    assert _recvs() >= 6  # 300 bytes = 3 recvs of at most 128 (rng_recvmsg's MAXSIZE), per instance


def test_get_random_bytes_is_unchanged() -> None:
    with new(seed=b"x"):
        assert len(get_random_bytes(200)) == 200
    assert type(new()).__name__ == "_KernelRNG"  # PyCryptodome's new(): no seed, the shared DRBG
    assert len(new(1, 2, x=3).read(5)) == 5  # other arguments are ignored, as by PyCryptodome


def test_empty_and_long_seeds() -> None:
    with new(seed=b"") as r:
        assert len(r.read(16)) == 16
    with new(seed=memoryview(bytes(range(256)) * 8)) as r:  # 2 KiB of personalization
        assert len(r.read(16)) == 16


def test_closed_and_bad_arguments() -> None:
    r = new(seed=b"s")
    r.close()
    r.close()
    with pytest.raises(ValueError, match="closed"):
        r.read(1)
    with pytest.raises(TypeError, match="seed must be bytes"):
        new(seed="text")
    with pytest.raises(TypeError, match="drbg must be a str"):
        new(drbg=5)


def test_unknown_drbg_is_refused_with_the_kernels_reason() -> None:
    for policy in ("strict", "fallback"):
        previous = kcapi_hashlib.set_policy(policy)
        try:
            with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="drbg_nopr_no_such") as info:
                new(seed=b"s", drbg="drbg_nopr_no_such")
            assert isinstance(info.value.reason, OSError) and info.value.reason.errno == errno.ENOENT
        finally:
            kcapi_hashlib.set_policy(previous)


def test_test_entropy_is_reproducible_or_refused() -> None:
    entropy, seed = bytes(range(48)), b"pers"
    try:
        a = new(seed=seed, entropy=entropy)
    except kcapi_hashlib.UnsupportedAlgorithm as e:
        reason = e.reason
        assert isinstance(reason, OSError)
        assert reason.errno in (errno.ENOPROTOOPT, errno.EACCES), reason
        assert "ALG_SET_DRBG_ENTROPY" in str(reason)
        if reason.errno == errno.ENOPROTOOPT:
            assert "CONFIG_CRYPTO_USER_API_RNG_CAVP" in str(reason)
        return
    # A kernel with the CAVP interface: the same DRBG, entropy and seed give the same output.
    with a, new(seed=seed, entropy=entropy) as b, new(seed=b"other", entropy=entropy) as c:
        x = a.read(64)
        assert x == b.read(64)
        assert x != c.read(64)
