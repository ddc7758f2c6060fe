"""kcapi_hashlib.pbkdf2_hmac's io_uring path (kcapi_hashlib._afalg.uring): U2..Uc as linked send -> recv requests
on one op socket, one io_uring_enter per batch. Differential against hashlib.pbkdf2_hmac (RFC 6070, and random
inputs across the batch boundaries), the syscall count of both paths, and the adversarial cases: an exception
from a signal handler in the middle of a batch, a forked child deriving while its parent does, threads.

Where io_uring is off (io_uring_setup refused: kernel.io_uring_disabled, seccomp, no CONFIG_IO_URING), the
differential and adversarial tests run the send/recv path (they hold either way) and the syscall test asserts
that path's count instead; only the tests about the ring itself skip, naming why it is off."""

from __future__ import annotations

import gc
import hashlib
import math
import os
import random
import signal
import threading
import time
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kcapi_hashlib
from kcapi_hashlib import _kdf
from kcapi_hashlib._afalg import core, uring
from tests.support import requires
from tests.support.syscalls import steady_state

pytestmark = requires.hash_names("hmac:sha1", "hmac:sha256", "hmac:sha512")

BATCH = uring.BATCH
# Iteration counts around every boundary: below the io_uring threshold, one batch, batch edges, several batches.
COUNTS = [1, 2, _kdf.URING_MIN_ITERATIONS - 1, _kdf.URING_MIN_ITERATIONS, 17, BATCH, BATCH + 1, BATCH + 2,
          2 * BATCH + 1, 3 * BATCH + 7]  # fmt: skip


def _uring_off() -> Optional[str]:
    """Why the io_uring path is off in this process, after one derivation that would use it."""
    kcapi_hashlib.pbkdf2_hmac("sha256", b"probe", b"salt", _kdf.URING_MIN_ITERATIONS)
    return uring.unavailable()


def _need_uring() -> None:
    why = _uring_off()
    if why is not None:
        pytest.skip(f"the io_uring path is off in this process: {why}")


# RFC 6070 (PBKDF2-HMAC-SHA1), without the 16777216-iteration vector (minutes under user-mode-linux).
RFC6070 = [
    (b"password", b"salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
    (b"password", b"salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
    (b"password", b"salt", 4096, 20, "4b007901b765489abead49d926f721d065a429c1"),
    (
        b"passwordPASSWORDpassword",
        b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
        4096,
        25,
        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
    ),
    (b"pass\0word", b"sa\0lt", 4096, 16, "56fa6aa75548099dcc37d7f03425e0c3"),
]


@pytest.mark.parametrize(("password", "salt", "c", "dklen", "want"), RFC6070)
def test_rfc6070(password: bytes, salt: bytes, c: int, dklen: int, want: str) -> None:
    assert kcapi_hashlib.pbkdf2_hmac("sha1", password, salt, c, dklen).hex() == want


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("c", COUNTS)
def test_batch_boundaries(name: str, c: int) -> None:
    size = hashlib.new(name).digest_size
    for dklen in (None, 1, size, 2 * size + 3):  # one block, a part of one, three blocks (one chain each)
        assert kcapi_hashlib.pbkdf2_hmac(name, b"pw", b"NaCl", c, dklen) == hashlib.pbkdf2_hmac(
            name, b"pw", b"NaCl", c, dklen
        )


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["sha1", "sha256", "sha512"]),
    password=st.one_of(st.binary(max_size=70), st.binary(min_size=129, max_size=300)),
    salt=st.binary(max_size=80),
    c=st.one_of(st.integers(1, 40), st.integers(BATCH - 3, BATCH + 3), st.integers(1, 3 * BATCH)),
    dklen=st.one_of(st.none(), st.integers(1, 130)),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_random(name: str, password: bytes, salt: bytes, c: int, dklen: Optional[int], kind: Any) -> None:
    got = kcapi_hashlib.pbkdf2_hmac(name, kind(password), kind(salt), c, dklen)
    assert got == hashlib.pbkdf2_hmac(name, password, salt, c, dklen)


def test_ring_is_used_and_accounted() -> None:
    """The ring really runs the chain, and accounts it as the send/recv path would (c sends, c recvs)."""
    _need_uring()
    c = 3 * BATCH + 5
    before = core.stats()
    assert kcapi_hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", c) == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", c)
    after = core.stats()
    assert after["send"] - before["send"] == c
    assert after["recv"] - before["recv"] == c
    assert uring.unavailable() is None


def test_syscalls_per_derivation() -> None:
    """io_uring path: U1 is one send + one recv, then one io_uring_enter per batch of BATCH iterations, plus
    the private tfm (socket, bind, setsockopt, accept, 2 close). Without io_uring: a send + a recv per
    iteration."""
    c = 4 * BATCH + 1  # U1, then 4 full batches
    why = _uring_off()
    setup = "import kcapi_hashlib\nkcapi_hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 64)"
    count = steady_state(setup, f"kcapi_hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', {c})", n=3)
    calls = count.by_syscall
    sends = sum(calls.get(k, 0) for k in ("write", "writev", "sendmsg", "sendto"))
    recvs = sum(calls.get(k, 0) for k in ("read", "readv", "recvmsg", "recvfrom"))
    if why is None:
        assert calls.get("io_uring_enter") == math.ceil((c - 1) / BATCH), count
        assert sends == 1 and recvs == 1, count  # U1 only
        # socket, bind, setsockopt(ALG_SET_KEY), accept4 (+ the getsockname of wrapping its fd), 2 close
        assert count.per_op <= 9 + math.ceil((c - 1) / BATCH), count
    else:
        assert sends == c and recvs == c, f"{count} (io_uring off: {why})"
        assert count.per_op <= 2 * c + 9, count


class _Planted(Exception):
    pass


def test_signal_exception_mid_batch() -> None:
    """An exception from a signal handler lands anywhere in a derivation (a batch in flight included): the call
    raises it or returns the right key, the ring stays usable (never switched off by an interrupt), and no
    descriptor is left behind."""
    _need_uring()
    rng = random.Random(int(os.environ.get("KCAPI_STRESS_SEED", "1109")))
    c = 3 * BATCH
    want = hashlib.pbkdf2_hmac("sha256", b"storm", b"salt", c)
    gc.collect()
    fds_before = len(os.listdir("/proc/self/fd"))
    hits = {"raised": 0, "mid_batch": 0}

    def handler(signum: int, frame: Any) -> None:
        ring = getattr(uring._local, "ring", None)
        if ring is not None and ring.outstanding:
            hits["mid_batch"] += 1
        hits["raised"] += 1
        raise _Planted()

    old = signal.signal(signal.SIGALRM, handler)
    results = {"ok": 0, "interrupted": 0, "wrong": 0}
    deadline = time.monotonic() + 6
    try:
        while time.monotonic() < deadline and (hits["mid_batch"] < 5 or results["ok"] < 5):
            try:
                # Mostly inside a derivation (a few ms under user-mode-linux, longer under qemu), sometimes
                # none: then the call must complete on the ring the interrupted calls left behind.
                if rng.random() < 0.75:
                    signal.setitimer(signal.ITIMER_REAL, rng.uniform(20e-6, 3e-3))
                got = kcapi_hashlib.pbkdf2_hmac("sha256", b"storm", b"salt", c)
                signal.setitimer(signal.ITIMER_REAL, 0)
                results["ok" if got == want else "wrong"] += 1
            except _Planted:
                results["interrupted"] += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert results["wrong"] == 0, (results, hits)
    assert uring.unavailable() is None, (uring.unavailable(), results, hits)
    assert hits["mid_batch"] >= 1 and results["ok"] >= 1, f"storm too weak: {results} {hits}"
    assert kcapi_hashlib.pbkdf2_hmac("sha256", b"storm", b"salt", c) == want
    gc.collect()
    fds_after = len(os.listdir("/proc/self/fd"))
    # An abandoned ring (a second exception during a drain) closes its fd too: nothing may grow.
    assert fds_after <= fds_before, (fds_before, fds_after, results, hits, len(uring._abandoned))


def _derive_many(tag: bytes, rounds: int, c: int) -> list[str]:
    problems = []
    for i in range(rounds):
        pw = tag + i.to_bytes(2, "big")
        got = kcapi_hashlib.pbkdf2_hmac("sha512", pw, b"salt", c)
        if got != hashlib.pbkdf2_hmac("sha512", pw, b"salt", c):
            problems.append(f"{tag!r} round {i}: wrong key")
    return problems


def test_fork_child_and_parent_derive_at_once() -> None:
    """The child inherits the parent's ring fd (its MAP_SHARED mappings are MADV_DONTFORK); it must never touch the
    parent's ring and makes its own (under user-mode-linux it uses send/recv: see uring._ring), while the parent
    keeps deriving on its ring."""
    why = _uring_off()  # the parent's ring exists before the fork
    c = 2 * BATCH + 3
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            problems = _derive_many(b"child", 6, c)
            mine = getattr(uring._local, "ring", None)
            if why is None and uring._user_mode_linux():
                if "forked child under user-mode-linux" not in (uring.unavailable() or ""):
                    problems.append(f"under user-mode-linux the child must not use io_uring: {uring.unavailable()}")
            elif why is None and (mine is None or mine.pid_generation != uring._generation):
                problems.append("the child did not make its own ring")
            os.write(w, ("\n".join(problems) or "ok").encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    parent_problems = _derive_many(b"parent", 6, c)
    with os.fdopen(r, "rb") as f:
        child_report = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, child_report
    assert child_report == "ok", child_report
    assert parent_problems == [], parent_problems
    assert uring.unavailable() == why


def test_threads() -> None:
    """One ring per thread (SINGLE_ISSUER: only its creator may submit): 6 threads derive at once."""
    why = _uring_off()
    problems: list[str] = []
    used: list[bool] = []

    def work(t: int) -> None:
        problems.extend(_derive_many(b"thread%d" % t, 4, BATCH + 9))
        used.append(getattr(uring._local, "ring", None) is not None)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == [], problems
    assert len(used) == 6
    if why is None:
        assert all(used), "a thread derived without its own ring"
    assert uring.unavailable() == why


_FORK_AFTER_RING = r"""
import hashlib, os, sys
import kcapi_hashlib
assert kcapi_hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 100) == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 100)
pid = os.fork()
if pid == 0:
    ok = bool(kcapi_hashlib.implementations("sha1"))  # reads /proc/crypto and binds by driver name
    os._exit(0 if ok else 1)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_child_forked_after_a_derivation_runs_plain_code() -> None:
    """A ring made by the parent (or the kernel's handling of its MADV_DONTFORK mappings) must not crash a child
    that never touches io_uring: user-mode-linux 6.1 did (SIGSEGV reading /proc/crypto), so io_uring is off there."""
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-c", _FORK_AFTER_RING], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "0", f"the child ended with {ran.stdout.strip()} (negative: killed by that signal)"
