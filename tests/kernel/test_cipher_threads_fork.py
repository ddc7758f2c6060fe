"""Cipher objects across threads and fork(), and the keyed-tfm cache under key churn.

Cipher objects keep their state (IV, counter, key-stream position) in userspace and take an op socket from
the keyed tfm's pool for the length of one call, so objects sharing a key run in parallel threads, and a
forked child goes on with an object where the parent was (on op sockets of its own) without disturbing it.
"""

from __future__ import annotations

import os
import threading

from Crypto.Cipher import AES as RefAES

from kcapi_hashlib._afalg import keyed, skcipher
from kcapi_hashlib.Cipher import AES
from tests.support import requires

KEY = bytes(range(32))
IV = bytes(16)


pytestmark = [
    *requires.cipher_code("AES.MODE_CTR", only="test_threads_share_a_key"),
    *requires.cipher_code("AES.MODE_CBC", only="test_one_object_in_many_threads_in_turn"),
    *requires.cipher_code("AES.MODE_CBC", only="test_forked_child_continues_the_stream_independently"),
    *requires.cipher_code("AES.MODE_ECB AES.MODE_CBC", only="test_key_churn_stays_correct_and_bounded"),
    *requires.cipher_code("AES.MODE_ECB", only="test_tfms_from_before_a_fork_are_never_rekeyed"),
    *requires.cipher_code("AES.MODE_CBC", only="test_fork_while_a_thread_holds_a_cbc_object"),
    *requires.cipher_code("AES.MODE_CTR", only="test_fork_while_threads_share_a_ctr_object"),
    *requires.cipher_code("AES.MODE_GCM", only="test_fork_while_a_thread_holds_a_gcm_object"),
]


def test_threads_share_a_key() -> None:
    data = [os.urandom(4096 + i) for i in range(8)]
    expected = [RefAES.new(KEY, RefAES.MODE_CTR, nonce=IV[:8]).encrypt(d) for d in data]
    results: list[list[bytes]] = [[] for _ in data]

    def work(i: int) -> None:
        for _ in range(30):
            results[i].append(AES.new(KEY, AES.MODE_CTR, nonce=IV[:8]).encrypt(data[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(data))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, outs in enumerate(results):
        assert outs == [expected[i]] * 30


def test_one_object_in_many_threads_in_turn() -> None:
    c = AES.new(KEY, AES.MODE_CBC, IV)
    ref = RefAES.new(KEY, RefAES.MODE_CBC, IV)
    lock = threading.Lock()
    out: list[bytes] = []

    def work() -> None:
        for _ in range(20):
            with lock:
                out.append(c.encrypt(bytes(64)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b"".join(out) == ref.encrypt(bytes(64 * 80))


def test_forked_child_continues_the_stream_independently() -> None:
    c = AES.new(KEY, AES.MODE_CBC, IV)
    ref = RefAES.new(KEY, RefAES.MODE_CBC, IV)
    first = c.encrypt(bytes(32))
    assert first == ref.encrypt(bytes(32))
    after = ref.encrypt(b"A" * 48)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, c.encrypt(b"A" * 48))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        child = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert child == after
    assert c.encrypt(b"A" * 48) == after  # the parent's object is where it was


def test_key_churn_stays_correct_and_bounded() -> None:
    skcipher.forget_keys()
    keys = [os.urandom(16) for _ in range(3 * skcipher._KEY_CACHE_MAX)]
    for _ in range(2):
        for k in keys:
            assert AES.new(k, AES.MODE_ECB).encrypt(bytes(16)) == RefAES.new(k, RefAES.MODE_ECB).encrypt(bytes(16))
    assert keyed.cache_len() == skcipher._KEY_CACHE_MAX
    # An object still holding an evicted key keeps working: a tfm is never re-keyed.
    held = AES.new(keys[0], AES.MODE_CBC, IV)
    for k in keys[1:]:
        AES.new(k, AES.MODE_ECB).encrypt(bytes(16))
    assert held.encrypt(bytes(32)) == RefAES.new(keys[0], RefAES.MODE_CBC, IV).encrypt(bytes(32))


def test_tfms_from_before_a_fork_are_never_rekeyed() -> None:
    """A pre-fork tfm is shared with the other process: re-keying it would change that process's key."""
    skcipher.forget_keys()
    keys = [os.urandom(16) for _ in range(skcipher._KEY_CACHE_MAX)]
    for k in keys:
        AES.new(k, AES.MODE_ECB).encrypt(bytes(16))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            # The child churns through new keys (its cache is full of shared tfms), then the parent checks.
            for _ in range(skcipher._KEY_CACHE_MAX):
                AES.new(os.urandom(16), AES.MODE_ECB).encrypt(bytes(16))
            os.write(w, b"done")
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"done"
    os.waitpid(pid, 0)
    for k in keys:  # same tfms, same keys in the parent
        assert AES.new(k, AES.MODE_ECB).encrypt(bytes(16)) == RefAES.new(k, RefAES.MODE_ECB).encrypt(bytes(16))


def _fork_and_use(c: object, call: str) -> str:
    """Fork while another thread is inside calls on c (holding its lock at some point); in the child, use c
    once under a watchdog. Returns what the child reported: 'ok', 'refused' (InterruptedCipherError) or
    another error; a child that hangs is killed by its alarm and reported as such."""
    import signal
    import time

    from kcapi_hashlib.Cipher import InterruptedCipherError

    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            getattr(c, call)(bytes(1 << 20))

    t = threading.Thread(target=busy, daemon=True)
    t.start()
    time.sleep(0.05)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            signal.alarm(20)  # a deadlocked child dies instead of hanging the test
            try:
                getattr(c, call)(bytes(64))
                os.write(w, b"ok")
            except InterruptedCipherError:
                os.write(w, b"refused")
            except BaseException as e:
                os.write(w, repr(e).encode())
        finally:
            os._exit(0)
    os.close(w)
    stop.set()
    t.join(60)
    assert not t.is_alive(), "the parent's thread did not finish"
    with os.fdopen(r, "rb") as f:
        got = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"the child did not exit (deadlocked on the object's lock?): status {status}"
    return got


def test_fork_while_a_thread_holds_a_cbc_object() -> None:
    """The child never deadlocks on a lock held at fork(): it gets a new one, and an object that was in the
    middle of a call there refuses to go on (its chaining value is unknown) instead of guessing."""
    c = AES.new(KEY, AES.MODE_CBC, IV)
    assert _fork_and_use(c, "encrypt") in ("ok", "refused")
    c.encrypt(bytes(16))  # the parent's object is whole: its thread finished every call it began


def test_fork_while_threads_share_a_ctr_object() -> None:
    c = AES.new(KEY, AES.MODE_CTR, nonce=IV[:8])
    assert _fork_and_use(c, "encrypt") == "ok"  # the range of a call cut off by fork() was reserved first


def test_fork_while_a_thread_holds_a_gcm_object() -> None:
    c = AES.new(KEY, AES.MODE_GCM, nonce=IV[:12])
    assert _fork_and_use(c, "encrypt") in ("ok", "refused")
