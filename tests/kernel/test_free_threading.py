"""Free-threaded CPython (3.13t+, ``--disable-gil``): the GIL stays off with kcapi_hashlib imported, and threads
that really run at once get the right MACs under many keys and exact operation counts.

Without the GIL nothing makes a sequence of bytecodes atomic: the keyed-transform cache, the op-socket pools and
the counters are shared by threads that run at the same time on different CPUs. The user-mode-linux kernels have
one CPU (threads interleave only at timer ticks there); tox's py313t env runs this file again under qemu with
two vCPUs (KCAPI_HASHLIB_QEMU_SMP=2), where two threads are inside the package at the same instant.

KCAPI_HASHLIB_FT_OPS scales the loads (operations per thread; qemu's software emulation is ~30x slower).
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import json
import os
import subprocess
import sys
import sysconfig
import threading
import time

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib._afalg import keyed
from tests.support import requires

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
OPS = int(os.environ.get("KCAPI_HASHLIB_FT_OPS", "1500"))
THREADS = 4
# Every load stops at this deadline (seconds) and says how far it got, rather than outlasting the VM's watchdog.
DEADLINE = float(os.environ.get("KCAPI_HASHLIB_FT_DEADLINE", "240"))

pytestmark = [
    requires.hash_names("sha256", "hmac:sha1", "hmac:sha256", "hmac:sha512"),
]

needs_free_threading = pytest.mark.skipif(
    not FREE_THREADED, reason="a GIL build of CPython (Py_GIL_DISABLED unset): nothing to check about the GIL"
)

# Imports every module of the package (and, separately, each third-party module the test suite loads), and
# says after which import, if any, the GIL came on: CPython turns it on for good when it loads an extension
# module that does not declare Py_mod_gil = Py_MOD_GIL_NOT_USED (with a RuntimeWarning naming it).
_PROBE = r"""
import importlib, json, pkgutil, sys, warnings
warnings.simplefilter("ignore")
order = [m for m in sys.argv[1:]]
if order[0] == "kcapi_hashlib":
    import kcapi_hashlib
    order += sorted(m.name for m in pkgutil.walk_packages(kcapi_hashlib.__path__, "kcapi_hashlib.")
                    if not m.name.endswith("__main__"))
turned_on = None
for name in order:
    importlib.import_module(name)
    if turned_on is None and sys._is_gil_enabled():
        turned_on = name
print(json.dumps({"imported": order, "gil_on_after": turned_on}))
"""


def _probe(*modules: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}  # the build's default: GIL off
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@needs_free_threading
def test_gil_stays_off_after_importing_every_module_of_the_package() -> None:
    result = _probe("kcapi_hashlib")
    assert len(result["imported"]) > 20, result  # type: ignore[arg-type]
    assert result["gil_on_after"] is None, f"importing {result['gil_on_after']} turned the GIL on"


@needs_free_threading
@pytest.mark.parametrize("module", ["Crypto.Cipher.AES", "Cryptodome.Cipher.AES", "hypothesis", "pytest"])
def test_gil_stays_off_with_the_test_dependencies(module: str) -> None:
    # Not kcapi_hashlib's modules, but if one of them turned the GIL on, every thread test in this process would
    # run under it and prove nothing about free threading.
    result = _probe(module)
    assert result["gil_on_after"] is None, f"importing {module} turned the GIL on"


@needs_free_threading
def test_this_test_process_runs_without_the_gil() -> None:
    assert os.environ.get("PYTHON_GIL") is None, "PYTHON_GIL is set: the GIL is not at the build's default"
    assert sys._is_gil_enabled() is False  # type: ignore[attr-defined]


def _run_threads(target: object, n: int) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            target(i)  # type: ignore[operator]
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE + 60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    if errors:
        raise errors[0]


def test_many_key_hmac_churn_matches_stdlib() -> None:
    # More keys than the cache holds, three digest sizes: every thread's hits race the others' misses, which
    # evict and re-key. A MAC under another thread's key, or another algorithm's, is counted and shown.
    keys = [b"tenant-%d" % i for i in range(keyed.CACHE_SIZE * 2)]
    algs = ("sha1", "sha256", "sha512")
    wrong: list[str] = []
    done = [0] * THREADS
    stop = time.monotonic() + DEADLINE
    khmac.clear_key_cache()

    def work(t: int) -> None:
        for i in range(OPS):
            if time.monotonic() > stop:
                break
            key = keys[(i * 7 + t * 13) % len(keys)]
            alg = algs[(i + t) % 3]
            msg = b"message %d from thread %d" % (i, t)
            got = khmac.new(key, msg, alg).digest() if i % 2 else khmac.digest(key, msg, alg)
            if got != std_hmac.digest(key, msg, alg):
                wrong.append(f"thread {t} op {i}: {alg} got {len(got)} bytes {got.hex()[:16]}...")
            done[t] += 1

    _run_threads(work, THREADS)
    total = sum(done)
    assert total >= THREADS * min(OPS, 50), f"only {total} operations before the deadline"
    assert not wrong, f"{len(wrong)} wrong MACs in {total} operations, e.g. {wrong[:3]}"


def test_operation_counts_are_exact_across_threads() -> None:
    # THREADS x OPS one-shot sha256 digests: each is exactly one recv() of the digest, whatever else (accept of
    # a new op socket or a pooled one) it needs; and the per-algorithm accounting adds up to the process-wide
    # counts, both counted at the same call site.
    data = b"count me"
    want = hashlib.sha256(data).digest()
    kcapi_hashlib.sha256(data).digest()  # the tfm bound: nothing but sha256 ops during the window
    before, acct_before = _afalg.core.stats(), _sha256_ops()
    bad = []

    def work(t: int) -> None:
        for _ in range(OPS):
            if kcapi_hashlib.sha256(data).digest() != want:
                bad.append(t)

    _run_threads(work, THREADS)
    after, acct_after = _afalg.core.stats(), _sha256_ops()
    assert not bad
    recvs = after["recv"] - before["recv"]
    made = sum(after.values()) - sum(before.values())
    lost = THREADS * OPS - recvs
    assert recvs == THREADS * OPS, f"recv counted {recvs} of {THREADS * OPS} ({100 * lost / (THREADS * OPS):.1f}% lost)"
    assert acct_after - acct_before == made, f"accounting() says {acct_after - acct_before}, stats() {made}"


def test_small_updates_of_one_object_from_many_threads_all_land() -> None:
    # Small bytes updates append to the stream's `pending` list without a lock (HashStream.add_bytes); every 64th
    # moves it into the buffer under the lock, and so does each digest() that a thread interleaves. All threads
    # append the same chunk, so any order gives one digest: a lost or doubled update changes it. Each
    # intermediate digest is of a whole number of chunks.
    chunk = b"0123456789abcdef" * 4
    n = 2_000
    h = kcapi_hashlib.sha256(chunk)
    h.update(chunk)  # the stream exists: every update below is a small append
    ref, prefixes = hashlib.sha256(chunk * 2), set()
    for _ in range(THREADS * n + 1):
        prefixes.add(ref.digest())
        ref.update(chunk)
    bad: list[str] = []

    def work(t: int) -> None:
        for i in range(n):
            h.update(chunk)
            if i % 97 == t:
                d = h.digest()
                if d not in prefixes:
                    bad.append(f"thread {t} after {i} updates: {d.hex()[:16]}... is no whole number of chunks")

    _run_threads(work, THREADS)
    assert not bad, bad[:3]
    assert h.digest() == hashlib.sha256(chunk * (THREADS * n + 2)).digest(), "an update was lost or doubled"


def _sha256_ops() -> int:
    rows = kcapi_hashlib.accounting()["kernel"]
    return sum(r["operations"] for r in rows if r["type"] == "hash" and r["algorithm"] == "sha256")


def test_the_counters_lose_no_increment_when_threads_count_at_once() -> None:
    # The counting site alone (core.count: process-wide stats and the algorithm's counter), called by THREADS
    # threads at once with nothing else in between: the narrow window in which two unlocked read-modify-writes
    # of one counter lose one of them, opened as wide as it gets.
    alg = _afalg.core.tfm("hash", "sha256")
    n = 30_000
    before, acct_before = _afalg.core.stats()["splice"], _sha256_ops()

    def work(t: int) -> None:
        for _ in range(n):
            _afalg.core.count(alg, "splice")

    _run_threads(work, THREADS)
    got, acct = _afalg.core.stats()["splice"] - before, _sha256_ops() - acct_before
    want = THREADS * n
    assert (got, acct) == (want, want), (
        f"stats() counted {got}, accounting() {acct} of {want} ({100 * (want - min(got, acct)) / want:.1f}% lost)"
    )
