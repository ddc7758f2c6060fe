"""Shared pytest setup for compat_tests/ and conformance/.

Every test here runs against the real kernel (under the project's user-mode-linux VM when the host has no
AF_ALG: `python -m kcapi_hashlib vm -- python -m pytest`). Nothing fakes AF_ALG. A session that made zero
AF_ALG operations fails, so a run that silently served everything from userspace cannot pass.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg

try:
    from hypothesis import HealthCheck, settings

    # The VM makes every syscall ~25 us: keep example counts sane and never fail on slowness.
    settings.register_profile("kernel", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "kernel"))
except ImportError:  # pragma: no cover - hypothesis is a test requirement
    pass


# Which suite this run is. "kernel" (the default): everything but the two directories below, AF_ALG must be
# reached. "refused": conformance/refused/, in a VM started with modules refused (a distribution's blacklist).
# "no-af-alg": conformance/no_af_alg/, in a VM with the af_alg module refused, so socket(AF_ALG) really fails
# with EAFNOSUPPORT as on a host without AF_ALG. tox.ini and .ci/run run all three.
SUITE = os.environ.get("KCAPI_HASHLIB_SUITE", "kernel")
_SUITE_DIRS = {"refused": "refused", "no-af-alg": "no_af_alg"}
if SUITE not in ("kernel", *_SUITE_DIRS):
    raise pytest.UsageError(f"KCAPI_HASHLIB_SUITE={SUITE!r}: use kernel, refused or no-af-alg")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    parts = collection_path.parts
    inside = {name for name, folder in _SUITE_DIRS.items() if folder in parts and "conformance" in parts}
    if SUITE == "kernel":
        return True if inside else None
    if collection_path.is_dir() and (collection_path / _SUITE_DIRS[SUITE]).exists():
        return None  # a parent of this suite's directory
    if _SUITE_DIRS[SUITE] in parts and "conformance" in parts:
        return None
    return True if collection_path.suffix == ".py" or collection_path.is_dir() else None


def pytest_report_header(config: pytest.Config) -> list[str]:
    why = _afalg.af_alg_status()
    kernel = os.uname().release
    return [f"kernel {kernel}; AF_ALG: {'available' if why is None else why}; suite: {SUITE}"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not getattr(session, "testscollected", 0) or exitstatus != 0:
        return
    if SUITE == "no-af-alg":
        why = _afalg.af_alg_status()
        problem = None if why is not None and why.errno == errno.EAFNOSUPPORT else f"AF_ALG is usable here ({why})"
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
