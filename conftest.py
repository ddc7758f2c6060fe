"""Shared pytest setup for compat_tests/ and conformance/.

Every test here runs against the real kernel (under the project's user-mode-linux VM when the host has no
AF_ALG: `python -m kcapi_hashlib vm -- python -m pytest`). Nothing fakes AF_ALG. A session that made zero
AF_ALG operations fails, so a run that silently served everything from userspace cannot pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg

try:
    from hypothesis import HealthCheck, settings

    # The VM makes every syscall ~25 us: keep example counts sane and never fail on slowness.
    settings.register_profile(
        "kernel", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "kernel"))
except ImportError:  # pragma: no cover - hypothesis is a test requirement
    pass


def pytest_report_header(config: pytest.Config) -> list[str]:
    why = _afalg.af_alg_status()
    kernel = os.uname().release
    return [f"kernel {kernel}; AF_ALG: {'available' if why is None else why}"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ran = session.testscollected - session.testsfailed if hasattr(session, "testscollected") else 0
    if ran and _afalg.kernel_operations() == 0 and exitstatus == 0:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "FAILED: this test run made zero AF_ALG operations: nothing was computed by the kernel "
                f"({_afalg.af_alg_status()})",
                red=True,
            )


@pytest.fixture(autouse=True)
def _restore_policy() -> Iterator[None]:
    """Tests may switch the policy; each starts strict and leaves it as found."""
    previous = kcapi_hashlib.set_policy("strict")
    try:
        yield
    finally:
        kcapi_hashlib.set_policy(previous)
