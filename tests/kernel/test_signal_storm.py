"""Signal storm: exceptions raised by a SIGALRM handler at arbitrary bytecode boundaries inside
library calls. A call either returns the right answer or raises; objects an exception never touched keep
working; no descriptor leaks; nothing deadlocks.

The workload (tests/support/stress.py, storm_workload) runs in a child interpreter under a watchdog, once with
kcapi_hashlib as the target and once with hashlib/hmac/PyCryptodome through the very same harness: the
reference run must come out clean, which shows that what the kcapi run finds is the library's; and a third run,
the reference with a planted non-atomic update(), must come out with wrong results (the checks can fail).
KCAPI_STRESS_SECONDS sets the storm duration (default 8 s per run), KCAPI_STRESS_TIMER_US the timer range,
KCAPI_STRESS_SEED replays a run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

import kcapi_hashlib
from tests.support import requires, stress

# Every test first checks that this session reaches the kernel with sha256. The kcapi storm (and the planted-bug
# harness, on the same workload) runs stress.storm_workload: the hashes and HMACs of stress._HASHES and
# _HMAC_DIGESTS, AES-GCM, ChaCha20-Poly1305 and AES-CTR.
_STORM_HASHES = ("sha256", "sha1", "sha512", "blake2b", "hmac:sha256", "hmac:sha1", "hmac:sha512")
_STORM_CIPHERS = "AES.MODE_GCM AES.MODE_CTR ChaCha20_Poly1305"
_STORM = [requires.hash_names(*_STORM_HASHES), *requires.cipher_code(_STORM_CIPHERS)]
_PLANTED = "test_harness_detects_a_planted_non_atomic_update"
pytestmark = [
    requires.hash_names("sha256"),
    requires.hash_names(*_STORM_HASHES, only=_PLANTED),
    *requires.cipher_code(_STORM_CIPHERS, only=_PLANTED),
]

FD_SLACK = 2  # descriptors the interpreter may open lazily between the two counts


def _figures(r: dict[str, Any]) -> str:
    keys = (
        "stage", "seed", "timer_us", "storm_seconds", "signals", "storms_raised", "calls", "returned",
        "interrupted", "checks", "wrong", "bystander_checks", "bystander_failures", "ebadf", "unexpected_errors",
        "errors_after_hit", "uncertain_dropped", "unraisable", "fds_before", "fds_after", "fd_kinds_before",
        "fd_kinds_after", "kernel_ops", "sanity",
    )  # fmt: skip
    lines = [f"  {k}: {json.dumps(r[k])}" for k in keys if k in r]
    for k in ("wrong_examples", "bystander_examples", "unexpected_examples", "unraisable_kinds"):
        for ex in r.get(k) or []:
            lines.append(f"  {k[:-9] if k.endswith('_examples') else k}: {ex}")
    return "\n".join(lines)


@pytest.mark.parametrize("target", ["reference", pytest.param("kcapi", marks=_STORM)])
def test_signal_storm(target: str) -> None:
    assert kcapi_hashlib.sha256(b"abc").digest()  # this session reaches the kernel (conftest's check)
    seconds = stress.storm_seconds()
    seed = stress.seed()
    timer = os.environ.get("KCAPI_STRESS_TIMER_US", "100,300")
    timeout = 3 * seconds + 45  # 3x the storm, plus interpreter start-up and warm-up in the VM
    run = stress.run_child(
        ["storm", "--target", target, "--seconds", str(seconds), "--seed", str(seed), "--timer-us", timer], timeout
    )
    r = run.result or run.partial or {}
    report = f"signal storm, target={target}, seed={seed} (KCAPI_STRESS_SEED replays it)\n{_figures(r)}"
    print(report)
    if run.hung:
        stage = r.get("stage", "before the storm finished")
        pytest.fail(f"deadlock/hang: no result within {timeout:.0f} s, at stage {stage!r}\n{report}\n{run.describe()}")
    assert run.result is not None, f"the child died without a result\n{report}\n{run.describe()}"
    problems = []
    if r["wrong"]:
        problems.append(f"{r['wrong']} wrong results (of {r['checks']} checked)")
    if r["bystander_failures"]:
        problems.append(f"{r['bystander_failures']} failures of objects never touched during an exception")
    if r["ebadf"]:
        problems.append(f"EBADF seen {r['ebadf']} times")
    if r["unexpected_errors"]:
        problems.append(f"errors from calls on objects no exception had hit: {r['unexpected_errors']}")
    if r["fds_after"] - r["fds_before"] > FD_SLACK:
        problems.append(f"descriptors grew from {r['fds_before']} to {r['fds_after']} after clearing every cache")
    if r["sanity"]:
        problems.append(f"fresh objects after the storm: {r['sanity']}")
    # The storm really happened and really did work (otherwise the checks above prove nothing).
    if (
        r["interrupted"] < stress.MIN_INTERRUPTED
        or r["checks"] < stress.MIN_CHECKS
        or r["bystander_checks"] < stress.MIN_BYSTANDER_CHECKS
    ):
        problems.append(
            f"storm too weak: fewer than {stress.MIN_INTERRUPTED} interrupted calls, {stress.MIN_CHECKS} checked"
            f" results or {stress.MIN_BYSTANDER_CHECKS} bystander checks"
        )
    assert not problems, "; ".join(problems) + "\n" + report


def test_harness_detects_a_planted_non_atomic_update() -> None:
    """Self-test: the reference with update() split in two halves must come out with wrong results."""
    assert kcapi_hashlib.sha256(b"abc").digest()
    seconds = min(4.0, stress.storm_seconds() / 2)
    seed = stress.seed()
    run = stress.run_child(["storm", "--target", "broken", "--seconds", str(seconds), "--seed", str(seed)], 90)
    assert run.result is not None, run.describe()
    r = run.result
    print(f"planted bug, seed={seed}\n{_figures(r)}")
    assert r["wrong"] > 0, f"the harness missed a non-atomic update in {r['checks']} checks\n{_figures(r)}"
    assert r["bystander_failures"] == 0 and r["fds_after"] == r["fds_before"], _figures(r)
