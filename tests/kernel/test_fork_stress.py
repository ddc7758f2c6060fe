"""fork() while threads update shared objects.

Threads update one shared sha256 object and one shared HMAC-SHA256 object (both past the userspace buffer, so
their state is in the kernel) while the main thread forks, over and over. In the child, digest() must equal
the digest of exactly the updates that had returned before fork(): updates still in flight at fork() may or
may not be in it (every chunk fed to one object is the same, so the digest names how many went in), and
nothing else; or it raises. Never silently different, never a hang. The parent's objects end up holding
exactly its own updates, none of the child's.

The workload runs in a child interpreter (tests/support/stress.py, fork_workload) so the pytest process never
forks with threads; each forked child is bounded by a timeout (os.waitpid polling, then SIGKILL) and dumps
its stacks first. The standard library runs through the same harness as the reference, and its figures are
reported next to kcapi's: CPython's hash objects hold a per-object lock while hashing >= 2 KiB with the GIL
released, so a child forked at that moment waits on that lock forever (its hang rate is printed).
KCAPI_STRESS_TRIALS sets the trials (default 20), KCAPI_STRESS_SECONDS the time budget (2x, default
16 s); hung children use up the budget, so a hanging run does fewer trials.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import kcapi_hashlib
from tests.support import requires, stress

pytestmark = requires.hash_names("sha256", "hmac:sha256")

CHILD_TIMEOUT = 5.0  # a forked child finishes in ~1 s in the VM; the margin absorbs a loaded host


def _run(target: str) -> tuple[stress.ChildRun, dict[str, Any], str]:
    trials = stress.env_int("KCAPI_STRESS_TRIALS", 20)
    budget = 2 * stress.storm_seconds()
    seed = stress.seed()
    timeout = budget + 2 * CHILD_TIMEOUT + 20 + 45  # trials, one more child, joining threads, start-up
    run = stress.run_child(
        ["fork", "--target", target, "--trials", str(trials), "--seconds", str(budget), "--seed", str(seed),
         "--child-timeout", str(CHILD_TIMEOUT)],
        timeout,
    )  # fmt: skip
    r = run.result or {}
    keys = (
        "trials", "child_ok", "child_raised", "child_wrong", "included_in_flight", "child_hangs", "child_crashed",
        "child_isolation_wrong", "fresh_wrong", "parent_wrong", "parent_thread_hang", "wall",
    )  # fmt: skip
    lines = [f"fork stress, target={target}, seed={seed}"] + [f"  {k}: {json.dumps(r[k])}" for k in keys if k in r]
    lines += [f"  example: {e}" for e in r.get("examples", [])]
    if r.get("trials"):
        lines.append(f"  child hang rate: {r['child_hangs']}/{r['trials']}")
    lines += [f"  hang traceback:\n{t}" for t in r.get("hang_tracebacks", [])[:1]]
    report = "\n".join(lines)
    print(report)
    if run.hung:
        pytest.fail(f"deadlock/hang of the forking process itself (no result in {timeout:.0f} s)\n{run.describe()}")
    assert run.result is not None, f"the child died without a result\n{run.describe()}"
    return run, r, report


def _wrong(r: dict[str, Any]) -> list[str]:
    problems = []
    for k in ("child_wrong", "child_isolation_wrong", "fresh_wrong", "parent_wrong", "child_crashed"):
        if r[k]:
            problems.append(f"{k}={r[k]}")
    if r.get("parent_thread_hang"):
        problems.append("an updating thread of the parent never finished")
    if r["trials"] < 5 and not r["child_hangs"]:  # (hung children take the time budget)
        problems.append(f"only {r['trials']} trials ran in the time budget")
    return problems


def test_fork_with_threads_reference() -> None:
    """The harness on hashlib/hmac: never a wrong digest (hangs are CPython's, reported, not failed)."""
    assert kcapi_hashlib.sha256(b"abc").digest()  # this session reaches the kernel (conftest's check)
    _, r, report = _run("reference")
    problems = _wrong(r)
    assert not problems, "; ".join(problems) + "\n" + report


def test_fork_with_threads_kcapi() -> None:
    assert kcapi_hashlib.sha256(b"abc").digest()
    _, r, report = _run("kcapi")
    problems = _wrong(r)
    if r["child_hangs"]:
        problems.append(f"{r['child_hangs']} of {r['trials']} forked children hung (deadlock)")
    assert not problems, "; ".join(problems) + "\n" + report
