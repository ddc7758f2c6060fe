"""Running one of CPython's own test modules (the running interpreter's test.test_hashlib, test.test_hmac) in a
child interpreter with kcapi_hashlib installed, under a watchdog: a test that hangs becomes a failure that names
it, with every thread's stack, never a stuck run.

The child's runner code starts with WATCHDOG (a unittest result class, `Watchdog`): each test announces itself
on stderr and arms faulthandler.dump_traceback_later(PER_TEST_S, exit=True), cancelled when the test ends. A
test that runs past it has the stacks of all threads dumped and the child exits; run() then fails naming that
test. The whole child also runs under a subprocess timeout (a hang outside any test: import, collection).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, Optional

#: Seconds one test of CPython's suites may take under the VM before it counts as hung (the slowest take a few
#: seconds there); $KCAPI_HASHLIB_TEST_HANG_S overrides it.
PER_TEST_S = int(os.environ.get("KCAPI_HASHLIB_TEST_HANG_S", "120"))

WATCHDOG = r"""
import faulthandler, sys, unittest
class Watchdog(unittest.TextTestResult):
    def startTest(self, test):
        sys.stderr.write("\n[watchdog] start %s\n" % test.id())
        sys.stderr.flush()
        faulthandler.dump_traceback_later(PER_TEST_S, exit=True)
        super().startTest(test)
    def stopTest(self, test):
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)
""".replace("PER_TEST_S", str(PER_TEST_S))

_START = re.compile(r"^\[watchdog\] start (\S+)$", re.M)
_TIMED_OUT = re.compile(r"^Timeout \(\d+:\d\d:\d\d\)!$", re.M)  # faulthandler's dump_traceback_later


def _last_started(stderr: str) -> Optional[str]:
    found = _START.findall(stderr)
    return found[-1] if found else None


def run(runner: str, args: Sequence[str], timeout: float, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Run `runner` (which must use WATCHDOG's Watchdog as its resultclass and print one JSON line last) in
    a child of this interpreter; its JSON result. A hang, in a test or anywhere, fails naming where."""
    cmd = [sys.executable, "-X", "faulthandler", "-c", WATCHDOG + runner, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(
            f"the suite ran past {timeout} s; last test started: {_last_started(err)}\n{err[-3000:]}"
        ) from None
    if _TIMED_OUT.search(proc.stderr):
        raise AssertionError(
            f"{_last_started(proc.stderr)} hung: no result within {PER_TEST_S} s (faulthandler's stacks "
            f"follow)\n{proc.stderr[-4000:]}"
        )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
