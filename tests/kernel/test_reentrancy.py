"""A signal handler that uses the very object its thread is in the middle of updating: it must get a
right answer or RuntimeError, never a deadlock (the object's lock is held by the interrupted frame of its own
thread) and never a wrong digest; the interrupted caller's later results stay exact."""

from __future__ import annotations

import subprocess
import sys

from tests.support import requires

pytestmark = [
    requires.hash_names("sha256", only="test_handler_*_the_object_*"),
    # _CIPHER_CHILD's modes: ctr, cbc, ofb, cfb (full blocks) and gcm
    *requires.cipher_code(
        "AES.MODE_CTR AES.MODE_CBC AES.MODE_OFB AES.MODE_CFB AES.MODE_GCM",
        only="test_handler_encrypting_with_the_object_at_every_line",
    ),
]

_CHILD = r"""
import hashlib, random, signal, sys, time
import kcapi_hashlib

h = kcapi_hashlib.sha256(b"s" * 100_000)  # streaming: the state is in the kernel
chunks = [bytes([i % 251]) * random.randint(1, 9000) for i in range(3000)]
done = 0  # updates that returned
prefix = [hashlib.sha256(b"s" * 100_000)]
for c in chunks:
    nxt = prefix[-1].copy()
    nxt.update(c)
    prefix.append(nxt)
seen = {"digest": 0, "busy": 0, "wrong": 0}

def handler(signum, frame):
    try:
        d = h.digest()
    except RuntimeError:
        seen["busy"] += 1
    else:
        # `done` may lag by one: an update can have reached the kernel and not yet returned.
        ok = d in (prefix[done].digest(), prefix[min(done + 1, len(chunks))].digest())
        seen["digest" if ok else "wrong"] += 1
    signal.setitimer(signal.ITIMER_REAL, random.uniform(20e-6, 400e-6))

signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 100e-6)
for c in chunks:
    h.update(c)
    done += 1
# A SIGALRM already delivered runs the handler at the next bytecode, and the handler re-arms the timer: ignore
# the signal first, then disarm, or the re-armed timer fires after exit restored SIG_DFL (killed by SIGALRM).
signal.signal(signal.SIGALRM, signal.SIG_IGN)
signal.setitimer(signal.ITIMER_REAL, 0)
assert h.digest() == prefix[-1].digest(), "the interrupted object's final digest is wrong"
print(seen["digest"], seen["busy"], seen["wrong"], flush=True)
"""


def test_handler_reading_the_object_it_interrupted() -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    digests, busy, wrong = map(int, proc.stdout.split())
    assert wrong == 0, f"{wrong} wrong digests from the handler"
    assert busy > 0, "no handler landed inside an operation: the test did not test re-entry"
    assert digests > 0, "no handler digest landed between operations"


# A handler that UPDATES the object its thread is inside, at every line of every HashStream and HASH method the outer
# call runs, in turn (deterministic: sys.settrace runs the nested call at the k-th line event, k = 0, 1, ...).
# The nested update either raises RuntimeError or lands whole before or after the outer data: any other digest
# means one of the two read state the other had replaced. (Before the fix, a nested update (large enough to
# open the kernel stream) between the outer
# call's reading of the op socket and its busy mark was lost: the outer call went on with a stale op.)
_TRACE_CHILD = r"""
import hashlib, sys
import kcapi_hashlib
from kcapi_hashlib._afalg import hash as stream_module

from kcapi_hashlib import _hash_object

codes = {
    f.__code__
    for cls in (stream_module.HashStream, _hash_object.HASH)
    for f in vars(cls).values()
    if hasattr(f, "__code__")
}
nested, outer, prefix_len = b"N" * 70_000, bytes(range(256)) * 300, int(sys.argv[1])
prefix = b"p" * prefix_len
good = {
    "raised": hashlib.sha256(prefix + outer).digest(),
    "before": hashlib.sha256(prefix + nested + outer).digest(),
    "after": hashlib.sha256(prefix + outer + nested).digest(),
}
tried = landed = busy = 0
k = 0
while True:
    h = kcapi_hashlib.sha256(prefix)
    events = [0]
    result = ["none"]

    def tracer(frame, event, arg):
        if frame.f_code not in codes:
            return None
        if event == "line":
            if events[0] == k:
                try:
                    h.update(nested)
                    result[0] = "landed"
                except RuntimeError:
                    result[0] = "raised"
            events[0] += 1
        return tracer

    sys.settrace(tracer)
    try:
        h.update(outer)
    finally:
        sys.settrace(None)
    if result[0] == "none":
        break  # k is past the last line the outer update runs
    d = h.digest()
    if result[0] == "raised":
        ok = d == good["raised"]
        busy += 1
    else:
        ok = d in (good["before"], good["after"])
        landed += 1
    assert ok, f"prefix {prefix_len}: nested update at line event {k} ({result[0]}) gave a wrong digest"
    tried += 1
    k += 1
print(tried, landed, busy)
"""


def test_handler_updating_the_object_at_every_line() -> None:
    # 0: nothing buffered or sent yet; 100: buffered; 200_000: the state is in the kernel already.
    for prefix_len in (0, 100, 200_000):
        proc = subprocess.run(
            [sys.executable, "-c", _TRACE_CHILD, str(prefix_len)], capture_output=True, text=True, timeout=240
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        tried, landed, busy = map(int, proc.stdout.split())
        assert tried > 10 and landed > 0 and busy > 0, (prefix_len, tried, landed, busy)


# The same for cipher objects: a nested encrypt() at every line the outer encrypt() runs, anywhere in the
# package. Before the fix a cipher object's lock was a plain Lock, so the nested call deadlocked. Now it raises
# RuntimeError, or lands whole before or after the outer call: the two ciphertexts, in one of the two orders,
# are what one continuous encryption gives (no key stream used twice, no chaining value lost).
_CIPHER_CHILD = r"""
import os, sys
from Crypto.Cipher import AES as Ref
import kcapi_hashlib
from kcapi_hashlib.Cipher import AES

pkg = os.path.dirname(kcapi_hashlib.__file__)
mode = sys.argv[1]
key, iv = bytes(range(16)), bytes(range(16, 32))
outer_pt, nested_pt = bytes(range(256)) * 16, b"\x5a" * 512


def make(lib):
    if mode == "ctr":
        return lib.new(key, lib.MODE_CTR, nonce=iv[:8])
    if mode == "cfb":  # full-block segments: CFB-8 would give one line event trial per byte
        return lib.new(key, lib.MODE_CFB, iv=iv, segment_size=128)
    if mode == "gcm":
        return lib.new(key, lib.MODE_GCM, nonce=iv[:12])
    return lib.new(key, getattr(lib, "MODE_" + mode.upper()), iv=iv)


tried = landed = busy = 0
k = 0
while True:
    c = make(AES)
    events = [0]
    got = [None]

    def tracer(frame, event, arg):
        if not frame.f_code.co_filename.startswith(pkg):
            return None
        if event == "line":
            if events[0] == k:
                try:
                    got[0] = c.encrypt(nested_pt)
                except RuntimeError:
                    got[0] = "busy"
            events[0] += 1
        return tracer

    sys.settrace(tracer)
    try:
        outer_ct = c.encrypt(outer_pt)
    finally:
        sys.settrace(None)
    if got[0] is None:
        break
    if got[0] == "busy":
        assert outer_ct == make(Ref).encrypt(outer_pt), f"{mode}: line event {k}: outer result wrong"
        busy += 1
    else:
        ok = got[0] + outer_ct == make(Ref).encrypt(nested_pt + outer_pt) or (
            outer_ct + got[0] == make(Ref).encrypt(outer_pt + nested_pt)
        )
        assert ok, f"{mode}: nested encrypt at line event {k} gave ciphertext no single encryption gives"
        landed += 1
    tried += 1
    k += 1
print(tried, landed, busy)
"""


def test_handler_encrypting_with_the_object_at_every_line() -> None:
    for mode in ("ctr", "cbc", "ofb", "cfb", "gcm"):
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _CIPHER_CHILD, mode], capture_output=True, text=True, timeout=120
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{mode}: a nested encrypt() from the same thread deadlocked") from exc
        assert proc.returncode == 0, proc.stderr[-3000:]
        tried, landed, busy = map(int, proc.stdout.split())
        assert tried > 10 and landed > 0 and busy > 0, (mode, tried, landed, busy)


# The policy's bookkeeping, re-entered at each of its lines by a handler that falls back too: before, its plain
# Lock deadlocked when the nested call came inside the outer one's `with _lock:` block.
_POLICY_CHILD = r"""
import sys, warnings
import kcapi_hashlib
from kcapi_hashlib import _policy

warnings.simplefilter("ignore")
kcapi_hashlib.set_policy("fallback")
codes = {_policy.unavailable.__code__}
tried = 0
k = 0
while True:
    events = [0]
    nested = [False]

    def tracer(frame, event, arg):
        if frame.f_code not in codes:
            return None
        if event == "line":
            if events[0] == k:
                assert kcapi_hashlib.new("shake_128", b"x").hexdigest(8) == "e472c5e394f30ff8"
                nested[0] = True
            events[0] += 1
        return tracer

    sys.settrace(tracer)
    try:
        h = kcapi_hashlib.new("shake_256", b"y")
    finally:
        sys.settrace(None)
    if not nested[0]:
        break
    tried += 1
    k += 1
print(tried)
"""


def test_handler_falling_back_inside_the_policy_bookkeeping() -> None:
    try:
        proc = subprocess.run([sys.executable, "-c", _POLICY_CHILD], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("a fallback from a handler inside the policy's bookkeeping deadlocked") from exc
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout) > 5
