"""The keyed-tfm cache (kcapi_hashlib._afalg.keyed): bounded, holds no key bytes, indexed by a keyed
fingerprint, emptied by clear_key_cache() and in a forked child, never re-keys a tfm that a live object or
another process still uses; and no descriptor leaks on any MAC/KDF error path."""

from __future__ import annotations

import gc
import hashlib
import hmac as std_hmac
import os
import threading
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib._afalg import keyed
from kcapi_hashlib.Hash import CMAC, HMAC, SHA256
from tests.support import requires

# What each test binds, so that under af_alg_restrict it skips naming the refusal (conftest): hmac(sha256)
# everywhere but the per-hash key-length test, which binds the hash it is given; CMAC-AES where it is used.
pytestmark = [
    requires.hash_names("hmac:sha256", only="test_[!k]*"),
    requires.hmacs("name", only="test_keys_of_every_length"),
    requires.kernel_alg("hash", "cmac(aes)", only="test_cache_holds_no_key_bytes"),
    requires.kernel_alg("hash", "cmac(aes)", only="test_no_descriptor_leaks_on_error_paths"),
    *requires.cipher_code("AES.MODE_GCM AES.MODE_CCM", only="test_evicted_*"),
]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _key(i: int, prefix: bytes = b"") -> bytes:
    return prefix + i.to_bytes(8, "big")


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    khmac.clear_key_cache()


def test_bounded_and_descriptors_stay_bounded() -> None:
    khmac.new(b"warm", b"m", "sha256").digest()
    base = _fds()
    for i in range(keyed.CACHE_SIZE * 3):
        assert khmac.digest(_key(i), b"m", "sha256") == std_hmac.digest(_key(i), b"m", "sha256")
    assert keyed.cache_len() == keyed.CACHE_SIZE
    # one tfm + one pooled op socket per cached key, no more
    assert _fds() - base <= 2 * keyed.CACHE_SIZE
    before = _fds()
    for i in range(keyed.CACHE_SIZE * 3, keyed.CACHE_SIZE * 6):
        khmac.digest(_key(i), b"m", "sha256")
    assert _fds() == before  # each eviction closes what the new key opens: the descriptor count does not move


def test_clear_key_cache_closes_unused_tfms() -> None:
    base = _fds()
    for i in range(10):
        khmac.new(_key(i), b"m", "sha256").digest()
    assert _fds() == base + 20
    assert khmac.clear_key_cache() == 10
    assert keyed.cache_len() == 0
    assert _fds() == base


def test_cache_holds_no_key_bytes() -> None:
    secret = b"correct horse battery staple 0123456789"
    khmac.new(secret, b"m", "sha256").digest()
    CMAC.new(secret[:16], b"m", ciphermod=AES).digest()
    seen: set[int] = set()
    stack: list[Any] = [keyed._lru]
    found = []
    while stack:  # everything reachable from the cache
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        if isinstance(obj, (bytes, bytearray)) and (secret in obj or secret[:16] in obj):
            found.append(obj)
        stack.extend(gc.get_referents(obj))
    assert found == []
    fingerprints = list(keyed._lru)
    assert len(fingerprints) == 2 and all(len(fp) == 32 for fp in fingerprints)
    # keyed with a per-process secret: not a plain hash of the key
    assert hashlib.blake2b(b"hash\0hmac(sha256)\0" + secret, digest_size=32).digest() not in fingerprints


def test_live_object_keeps_its_key_through_evictions() -> None:
    small = khmac.new(b"first key", b"abc", "sha256")
    big = khmac.new(b"first key", digestmod="sha256")
    big.update(b"x" * 300_000)  # streams on an op socket of the keyed tfm
    for i in range(keyed.CACHE_SIZE + 10):
        khmac.digest(_key(i), b"m", "sha256")  # evicts (dropping, never re-keying, the oldest tfms)
    assert small.digest() == std_hmac.new(b"first key", b"abc", "sha256").digest()
    copy = big.copy()
    copy.update(b"y")
    assert big.digest() == std_hmac.new(b"first key", b"x" * 300_000, "sha256").digest()
    assert copy.digest() == std_hmac.new(b"first key", b"x" * 300_000 + b"y", "sha256").digest()
    small.update(b"def")
    assert small.hexdigest() == std_hmac.new(b"first key", b"abcdef", "sha256").hexdigest()


def test_tfm_closed_under_the_cache_is_replaced() -> None:
    khmac.digest(b"k", b"m", "sha256")
    _afalg.close_all()
    assert khmac.digest(b"k", b"m", "sha256") == std_hmac.digest(b"k", b"m", "sha256")


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 127, 128, 129, 4096, 4097, 30_000, 200_000])
@pytest.mark.parametrize("name", ["sha1", "sha256", "sha512", "sha3_256"])
def test_keys_of_every_length(size: int, name: str) -> None:
    key = bytes((i * 7 + 3) & 0xFF for i in range(size))
    h = khmac.new(key, b"message", name)
    assert h._hmac is not None
    assert h.digest() == std_hmac.new(key, b"message", name).digest()
    # 30 KB and more exceed optmem_max for setsockopt: such keys are hashed first (RFC 2104), same MAC
    assert kcapi_hashlib.pbkdf2_hmac(name, key, b"salt", 2) == hashlib.pbkdf2_hmac(name, key, b"salt", 2)


def _in_child(fn: Callable[[], bytes], before_child_runs: Callable[[], None] = lambda: None) -> bytes:
    go_r, go_w = os.pipe()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        os.close(go_w)
        try:
            os.read(go_r, 1)
            os.write(w, fn())
        finally:
            os._exit(0)
    os.close(w)
    os.close(go_r)
    before_child_runs()
    os.write(go_w, b"x")
    os.close(go_w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return data


def test_fork_child_starts_with_an_empty_cache() -> None:
    khmac.digest(b"parent key", b"m", "sha256")
    assert keyed.cache_len() == 1

    def child() -> bytes:
        n = keyed.cache_len()
        mac = khmac.digest(b"parent key", b"m", "sha256")
        return bytes([n]) + mac

    out = _in_child(child)
    assert out[0] == 0
    assert out[1:] == std_hmac.digest(b"parent key", b"m", "sha256")
    assert keyed.cache_len() == 1  # the parent's cache is untouched


def test_parent_never_rekeys_a_tfm_the_child_still_uses() -> None:
    h = khmac.new(b"shared key", b"abc", "sha256")  # holds the cached tfm of "shared key"
    want = std_hmac.new(b"shared key", b"abcdef", "sha256").digest()

    def child() -> bytes:  # runs after the parent evicted (and would have re-keyed) that tfm
        h.update(b"def")
        return h.digest() + khmac.new(b"shared key", b"abcdef", "sha256").digest()

    def parent_churns() -> None:
        nonlocal h
        del h  # the parent's last user: the tfm is now the cache's alone, but shared with the child
        for i in range(keyed.CACHE_SIZE + 10):
            assert khmac.digest(_key(i, b"p"), b"m", "sha256") == std_hmac.digest(_key(i, b"p"), b"m", "sha256")

    out = _in_child(child, parent_churns)
    assert out == want + want


def test_threads_with_many_keys() -> None:
    errors: list[str] = []

    def worker(t: int) -> None:
        for i in range(150):
            key = _key(i % 70, bytes([t]))
            if khmac.digest(key, b"msg", "sha256") != std_hmac.digest(key, b"msg", "sha256"):
                errors.append(f"thread {t} key {i}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert keyed.cache_len() <= keyed.CACHE_SIZE


def _raises(fn: Callable[[], object], exc: type[BaseException]) -> None:
    with pytest.raises(exc):
        fn()


def test_no_descriptor_leaks_on_error_paths() -> None:
    khmac.digest(b"k", b"m", "sha256")  # the keys used below are cached before counting (2 fds each)
    CMAC.new(bytes(16), b"m", ciphermod=AES).digest()
    base = _fds()
    for _ in range(3):
        _raises(lambda: CMAC.new(b"", b"m", ciphermod=AES), ValueError)  # empty key
        _raises(lambda: CMAC.new(b"k" * 15, b"m", ciphermod=AES), ValueError)
        _raises(lambda: CMAC.new(bytes(16), b"m", ciphermod=AES, mac_len=2), ValueError)
        _raises(lambda: CMAC.new(bytes(16), "text of 16 bytes", ciphermod=AES), TypeError)
        _raises(lambda: CMAC.new(bytes(16), b"m", ciphermod=AES).verify(b"wrong tag"), ValueError)
        _raises(lambda: khmac.new("str key", b"m", "sha256"), TypeError)
        _raises(lambda: khmac.new(b"k", "str msg", "sha256"), TypeError)
        _raises(lambda: khmac.new(b"k", b"m", "sha512_256"), ValueError)  # strict: the kernel has no sha512/256
        _raises(lambda: khmac.new(b"k", b"m", "no-such-hash"), ValueError)
        _raises(lambda: khmac.digest(b"k", None, "sha256"), TypeError)  # type: ignore[arg-type]
        _raises(lambda: HMAC.new(b"k", b"m", SHA256).hexverify("00" * 32), ValueError)
        _raises(lambda: HMAC.new(b"k", "str", SHA256), TypeError)
        _raises(lambda: kcapi_hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 0), ValueError)
        _raises(lambda: kcapi_hashlib.pbkdf2_hmac("sha256", "pw", b"salt", 1), TypeError)  # type: ignore[arg-type]
        _raises(lambda: kcapi_hashlib.pbkdf2_hmac("sha512_256", b"pw", b"salt", 1), ValueError)
    assert _fds() == base


def test_evicted_aead_tfm_rebound_to_another_algorithm_takes_the_tag_size() -> None:
    # Fill the cache with gcm(aes) tfms at a 4-byte tag, drop them, then ask for ccm(aes) at 4 bytes: the
    # oldest gcm entry is rebound to ccm(aes) (a fresh kernel tfm, at the 16-byte maximum) and must be told 4
    # again. Found by test_aead_diff on 3.13 (test_ccm after test_gcm: recvmsg EINVAL).
    from Crypto.Cipher import AES as RefAES

    from kcapi_hashlib.Cipher import AES as KAES

    keyed.clear()
    nonce = bytes(12)
    for i in range(keyed.CACHE_SIZE):
        KAES.new(_key(i, b"gcm-fill"), KAES.MODE_GCM, nonce=nonce, mac_len=4).encrypt_and_digest(b"fill")
    gc.collect()
    for mac_len in (4, 16, 6):
        key = os.urandom(16)
        got = KAES.new(key, KAES.MODE_CCM, nonce=nonce[:11], mac_len=mac_len).encrypt_and_digest(b"data")
        want = RefAES.new(key, RefAES.MODE_CCM, nonce=nonce[:11], mac_len=mac_len).encrypt_and_digest(b"data")
        assert got == want, mac_len
