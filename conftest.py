"""Shared pytest setup for tests/ (tests/README.md says which part holds what).

Every test here runs against the real kernel (under the project's user-mode-linux VM when the host has no
AF_ALG: `python -m kcapi_hashlib vm -- python -m pytest`). Nothing fakes AF_ALG. A session that made zero
AF_ALG operations fails, so a run that silently served everything from userspace cannot pass.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import procfs, restrict

try:
    from hypothesis import HealthCheck, settings

    # The VM makes every syscall ~25 us: keep example counts sane and never fail on slowness.
    settings.register_profile("kernel", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "kernel"))
except ImportError:  # pragma: no cover - hypothesis is a test requirement
    pass


# Which suite this run is. "kernel" (the default): everything but tests/environments/, AF_ALG must be reached.
# The environment suites, one folder of tests/environments/ each, are collected only when selected:
# "refused": refused/, in a VM started with modules refused (a distribution's blacklist).
# "no-af-alg": no_af_alg/, in a VM with the af_alg module refused, so socket(AF_ALG) really fails
# with EAFNOSUPPORT as on a host without AF_ALG. tox.ini and .ci/run run all three.
# "restricted": restricted/, on a kernel with af_alg_restrict >= 1 (Linux 7.3+, `vm --sysctl`).
# "fips": fips/, on a kernel booted in FIPS mode (`vm --fips`; Debian's amd64 kernels up to 6.12).
SUITE = os.environ.get("KCAPI_HASHLIB_SUITE", "kernel")
_SUITE_DIRS = {"refused": "refused", "no-af-alg": "no_af_alg", "restricted": "restricted", "fips": "fips"}
if SUITE not in ("kernel", *_SUITE_DIRS):
    raise pytest.UsageError(f"KCAPI_HASHLIB_SUITE={SUITE!r}: use kernel, refused, no-af-alg, restricted or fips")


_ENVIRONMENTS = "environments"  # tests/environments/<folder>


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    parts = collection_path.parts
    inside = {name for name, folder in _SUITE_DIRS.items() if folder in parts and _ENVIRONMENTS in parts}
    if SUITE == "kernel":
        return True if inside else None
    folder = _SUITE_DIRS[SUITE]
    if collection_path.is_dir() and any(
        os.path.exists(collection_path / below) for below in (folder, f"{_ENVIRONMENTS}/{folder}")
    ):
        return None  # a parent of this suite's directory (os.path.exists: False, not PermissionError, in a
        # directory an unprivileged run cannot search, such as root's .tox/ENV)
    if folder in parts and _ENVIRONMENTS in parts:
        return None
    return True if collection_path.suffix == ".py" or collection_path.is_dir() else None


# --- declared kernel requirements (tests/support/requires.py) ----------------------------------------------
#
# `@pytest.mark.kernel_alg(alg_type, name)` (or module-level, see tests/support/requires.py) declares what a test
# needs the kernel to bind, probed once per algorithm. An algorithm this kernel does not have at all (ENOENT, and
# neither /proc/crypto nor its module index knows it) skips, named. Where af_alg_restrict >= 1: a declared algorithm
# the restriction refuses this process skips the test with the restriction's reason, collected and printed at
# the end. A probe refused for any other reason (ENOENT for what the kernel has, EINVAL, EMFILE...) does not
# skip: the test runs and shows it. The zero-AF_ALG-operations check below still fails a run where everything skipped.

_restriction_skips: dict[str, list[str]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kernel_alg(alg_type, name=None, *, only=None, from_param=None, kernel=None): the test needs the kernel "
        "to bind this algorithm; skipped only when af_alg_restrict refuses it here (tests/support/requires.py)",
    )


def declared_algorithms(item: pytest.Item) -> list[tuple[str, str]]:
    """The (alg_type, name) pairs item's kernel_alg markers declare."""
    found: list[tuple[str, str]] = []
    for mark in item.iter_markers("kernel_alg"):
        only = mark.kwargs.get("only")
        if only is not None and not fnmatch.fnmatchcase(getattr(item, "originalname", item.name), only):
            continue
        alg_type = mark.args[0]
        if "from_param" in mark.kwargs:
            params = getattr(getattr(item, "callspec", None), "params", {})
            if mark.kwargs["from_param"] not in params:
                continue
            names = mark.kwargs["kernel"](params[mark.kwargs["from_param"]])
        else:
            names = mark.args[1]
        for name in (names,) if isinstance(names, str) else names or ():
            found.append((alg_type, name))
    return found


def pytest_runtest_setup(item: pytest.Item) -> None:
    level = restrict.level()
    for alg_type, name in declared_algorithms(item):
        why = _afalg.probe(alg_type, name)  # one bind per algorithm and process
        if why is None:
            continue
        refusal = why.restriction if level else None
        if refusal is None:
            # Not built: ENOENT, and nothing in this kernel (/proc/crypto, its module index) has the algorithm
            # or its parts (Debian's 7.3 config has no CONFIG_CRYPTO_BLAKE2B, no DRBG). A module refused by
            # modprobe, EINVAL, EMFILE ... do not skip: the test runs and shows what happens.
            if why.errno == errno.ENOENT and restrict.kernel_has(name) is None:
                reason = (
                    f"{name} is not in this kernel ({os.uname().release}): ENOENT, not in /proc/crypto or its modules"
                )
                _restriction_skips.setdefault(reason, []).append(item.nodeid)
                pytest.skip(reason)
            continue
        if refusal.cause == restrict.DISABLED:
            reason = f"AF_ALG disabled by af_alg_restrict={refusal.level}"
        else:
            who = refusal.process.describe()
            reason = f"{name} refused by af_alg_restrict={refusal.level} for {who}"
            if refusal.cause == restrict.MAYBE_RESTRICTED:
                reason += " (ENOENT: the restriction or not built, cannot tell)"
        _restriction_skips.setdefault(reason, []).append(item.nodeid)
        pytest.skip(reason)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for reason, ids in sorted(_restriction_skips.items(), key=lambda kv: -len(kv[1])):
        terminalreporter.write_line(f"skipped {len(ids)} test{'s' if len(ids) != 1 else ''}: {reason}", yellow=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    why = _afalg.af_alg_status()
    kernel = os.uname().release
    level = restrict.level()
    restriction = "absent" if level is None else str(level)
    who = restrict.process().describe()
    return [
        f"kernel {kernel}; AF_ALG: {'available' if why is None else why}; suite: {SUITE}",
        f"af_alg_restrict: {restriction}; this process: {who}",
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not getattr(session, "testscollected", 0) or exitstatus != 0:
        return
    level = restrict.level()
    if SUITE == "no-af-alg":
        why = _afalg.af_alg_status()
        problem = None if why is not None and why.errno == errno.EAFNOSUPPORT else f"AF_ALG is usable here ({why})"
    elif SUITE == "restricted" and not level:
        problem = f"the restricted suite needs af_alg_restrict >= 1 (it is {'absent' if level is None else level})"
    elif SUITE == "restricted" and level == 2:
        why = _afalg.af_alg_status()
        ok = why is not None and why.restriction is not None and why.errno == errno.EAFNOSUPPORT
        problem = None if ok else f"af_alg_restrict=2 but socket(AF_ALG) did not fail with EAFNOSUPPORT ({why})"
    elif SUITE == "fips" and not procfs.fips_enabled():
        problem = "the fips suite needs a kernel in FIPS mode (booted with fips=1: vm --fips)"
    elif _afalg.kernel_operations() == 0:
        problem = f"this run made zero AF_ALG operations: nothing was computed by the kernel ({_afalg.af_alg_status()})"
    else:
        problem = None
    if problem is not None:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: {problem}", red=True)


@pytest.fixture(autouse=True)
def _restore_policy() -> Iterator[None]:
    """Tests may switch the policy; each starts strict and leaves it as found."""
    previous = kcapi_hashlib.set_policy("strict")
    try:
        yield
    finally:
        kcapi_hashlib.set_policy(previous)


@pytest.fixture(scope="session", autouse=True)
def _where_this_ran(record_testsuite_property: Any) -> None:
    """What this run was, in its JUnit report: .ci/junit_summary.py builds the tested matrix (kernels x
    Pythons x privilege) from these, for the README."""
    import platform

    level = restrict.level()
    record_testsuite_property("kernel", os.uname().release)
    record_testsuite_property("python", platform.python_version())
    record_testsuite_property("af_alg_restrict", "absent" if level is None else str(level))
    record_testsuite_property("process", restrict.process().describe())
    record_testsuite_property("suite", SUITE)
