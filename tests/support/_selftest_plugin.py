"""pytest plugin for test_pycryptodome_selftest.py's child run of PyCryptodome's own SelfTest suites (loaded with
-p, after kcapi_hashlib.pytest_plugin has installed kcapi_hashlib under the fallback policy).

- EXCLUDED: SelfTest cases that cannot hold with kcapi_hashlib in place of Crypto.*, each with the reason; they
  are marked skip with "excluded: <reason>", so the child's report names them.
- At the end of the session, the JSON file named by $KCAPI_SELFTEST_REPORT gets each test's outcome by SelfTest
  module (passed, failed, skipped, excluded; a failure with its message) and kcapi_hashlib.accounting() (kernel
  operations, and everything computed in userspace with the reason), for the parent to check that nothing the
  kernel has fell back.
"""

from __future__ import annotations

import fnmatch
import json
import os
from typing import Any

import pytest

# "<suite file>::<test name pattern>" (fnmatch on the file's name and the item's name with its class) -> reason.
_PRIVATE = "it reads or sets PyCryptodome's private attributes of the object (%s), which kcapi_hashlib's does not have"
_SLOW = "%s under user-mode-linux; "
EXCLUDED: dict[str, str] = {
    # What the test inspects is PyCryptodome's implementation, not its API.
    "test_ChaCha20.py::TestChaCha20Threads::test_threads_all_cores*": _PRIVATE % "ChaCha20Cipher._threads",
    "test_GCM.py::TestGcmThreads::test_threads_all_cores": _PRIVATE % "GcmMode._signer._threads",
    "test_ChaCha20_Poly1305.py::TestNonce8Bytes::test_max_plaintext": _PRIVATE
    % "_cipher.seek() to the end of the 32-bit block counter",
    "test_message_too_long.py::TestGCM::test_data*": _PRIVATE % "GcmMode._msg_len, to start near the 64 GiB limit",
    "test_message_too_long.py::TestGCM::test_assoc_data": _PRIVATE % "GcmMode._auth_len",
    "test_BLAKE2.py::TestBlake2bRawCopy::*": _PRIVATE % "BLAKE2b_Hash._state, the C state copied raw",
    "test_KDF.py::TestPBKDF2::test_hash_object*": "it asserts that PyCryptodome's private _pbkdf2_hmac_assist (its C "
    "inner loop) takes the hash object: kcapi_hashlib's PBKDF2 runs HMAC on the kernel instead",
    # Slow under UML (~25 us a syscall), and covered elsewhere.
    "test_KDF.py::TestPBKDF2::test1[[]v7[]]": _SLOW
    % "80000 PBKDF2-HMAC-SHA256 iterations for 64 bytes (160000 kernel HMACs): ~50 s"
    + "the six other PBKDF2 vectors of this class run, up to 4096 iterations",
    "test_KDF.py::TestScrypt::test2[[]tv3[]]": _SLOW % "scrypt with N = 2**20: ~55 s"
    + "no kernel has scrypt (a fallback: PyCryptodome's own, whose PBKDF2 steps run on the kernel's HMAC)",
    "test_OCB.py::TestOcbThreads::test_range_boundaries*": _SLOW % "~40 s each"
    + "no kernel has OCB: PyCryptodome's own (a fallback) with threads; TestOcb and TestOcbRfc7253 run",
    "test_OCB.py::TestOcbThreads::test_one_shot[[]*[]]": _SLOW % "up to 15 s each" + "the same fallback as above",
    "test_MD5.py::TestMd5Iter::*": _SLOW % "100000 chained kernel MD5 hashes: ~25 s"
    + "MD5's vectors (Hash/common TestVectors) run",
}


def excluded_reason(filename: str, name: str) -> str | None:
    for pattern, reason in EXCLUDED.items():
        file_pattern, _, test_pattern = pattern.partition("::")
        if fnmatch.fnmatchcase(filename, file_pattern) and fnmatch.fnmatchcase(name, test_pattern):
            return reason
    return None


# "<module>::<test>" -> [SelfTest module, outcome, message, fallbacks during the test]; written by pytest's main
# thread only (the hooks below). Keyed with the module: with --pyargs outside the rootdir nodeids lose their path,
# and the tests SelfTest's common.py generates have the same names in every suite.
_outcomes: dict[str, list[Any]] = {}
_fallbacks_seen: dict[str, int] = {}


def _key(item: pytest.Item) -> str:
    module = getattr(getattr(item, "module", None), "__name__", "?").replace("Crypto.SelfTest.", "")
    return f"{module}::{item.nodeid.split('::', 1)[-1]}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        key = _key(item)
        _outcomes[key] = [key.split("::", 1)[0], "passed", "", {}]
        reason = excluded_reason(os.path.basename(str(item.path)), key.split("::", 1)[1])
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"excluded: {reason}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    entry = _outcomes.get(_key(item))
    if entry is None:
        return
    if report.when == "teardown":
        import kcapi_hashlib

        now = kcapi_hashlib.fallback_counts()
        entry[3] = {k: n - _fallbacks_seen.get(k, 0) for k, n in now.items() if n != _fallbacks_seen.get(k, 0)}
        _fallbacks_seen.clear()
        _fallbacks_seen.update(now)
    if entry[1] == "failed":
        return
    if report.failed:
        entry[1], entry[2] = "failed", f"{report.when}: {report.longreprtext[-600:]}"
    elif report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        entry[1], entry[2] = ("excluded" if "excluded: " in reason else "skipped"), reason


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("KCAPI_SELFTEST_REPORT")
    if not path:
        return
    import kcapi_hashlib

    out = {
        "outcomes": _outcomes,
        "accounting": kcapi_hashlib.accounting(),
        "fallbacks": kcapi_hashlib.fallback_counts(),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f)
