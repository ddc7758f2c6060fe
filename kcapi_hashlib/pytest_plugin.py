"""A pytest plugin: run your own test suite with kcapi_hashlib installed (hashlib, hmac, Crypto.*, Cryptodome.*
on the kernel).

    pytest --kcapi [--kcapi-policy strict|fallback]       # the plugin is registered by the package (pytest11)
    pytest -p kcapi_hashlib.pytest_plugin --kcapi         # where the entry point is not installed

Nothing happens without --kcapi (or --kcapi-policy, or `kcapi = true` in the ini file): the plugin then imports
no module of the library. With it: install() in pytest_configure, before any test module is imported; the policy
from --kcapi-policy (default strict), also given to the suite's Python subprocesses (KCAPI_HASHLIB_INSTALL /
KCAPI_HASHLIB_POLICY, see kcapi_hashlib._autoinstall); at the end of the session the accounting summary (kernel
operations per algorithm, everything computed in userspace and why).

Under strict, a test during which the kernel refused an algorithm fails, even if the code under test caught the
UnsupportedAlgorithm and carried on some other way: strict means nothing was computed outside the kernel.
Under fallback such tests pass and are listed in the summary with what they computed in userspace.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

# Nothing of the library is imported here: pytest loads this plugin (pytest11 entry point) in every run of an
# environment where the package is installed, and without --kcapi it must cost nothing and fail nothing (a bad
# KCAPI_HASHLIB_POLICY included). The hooks below import what they need once the option is given.
_KEY = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kcapi", "kcapi_hashlib: run the suite with hashlib/hmac/Crypto.* on the kernel")
    group.addoption("--kcapi", action="store_true", default=False, help="install kcapi_hashlib for the session")
    group.addoption(
        "--kcapi-policy",
        choices=("strict", "fallback"),
        default=None,
        help="what the kernel cannot serve: strict (default) raises and fails the test; fallback computes it",
    )
    parser.addini("kcapi", "install kcapi_hashlib for the session (as --kcapi)", type="bool", default=False)


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("kcapi") or config.getoption("kcapi_policy") or config.getini("kcapi"))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not _enabled(config):
        return
    import kcapi_hashlib

    policy = config.getoption("kcapi_policy") or "strict"
    previous = kcapi_hashlib.set_policy(policy)
    os.environ["KCAPI_HASHLIB_INSTALL"] = "1"
    os.environ["KCAPI_HASHLIB_POLICY"] = policy
    kcapi_hashlib.install()
    config.stash[_KEY] = {"policy": policy, "previous": previous, "tests": {}}


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_KEY, None)
    if state is None:
        return
    import kcapi_hashlib

    kcapi_hashlib.uninstall()
    kcapi_hashlib.set_policy(state["previous"])


def _userspace_counts() -> dict[tuple[str, str, str], int]:
    from ._afalg import accounting as _accounting

    snap = _accounting.snapshot()
    out: dict[tuple[str, str, str], int] = {}
    for side in ("fallbacks", "refused"):
        for row in snap[side]:
            out[(side, row["kind"], row["algorithm"])] = row["count"]
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    state = item.config.stash.get(_KEY, None)
    if state is None:
        return (yield)
    before = _userspace_counts()
    try:
        return (yield)
    finally:
        after = _userspace_counts()
        new = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0) > 0}
        if new:
            state["tests"][item.nodeid] = new
            refused = sorted(f"{kind} {alg}" for (side, kind, alg) in new if side == "refused")
            if state["policy"] == "strict" and refused:
                pytest.fail(
                    f"kcapi_hashlib (strict): the kernel could not serve {', '.join(refused)} in this test "
                    "(the refusal was raised as UnsupportedAlgorithm; see the accounting summary)",
                    pytrace=False,
                )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_KEY, None)
    if state is None:
        return
    from . import _report

    tr = terminalreporter
    tr.section(f"kcapi_hashlib accounting (policy {state['policy']})")
    for line in _report.format_table(_report.accounting()).rstrip("\n").splitlines():
        tr.write_line(line)
    if state["tests"]:
        tr.write_line("tests that needed userspace:")
        for nodeid, new in sorted(state["tests"].items()):
            what = ", ".join(
                f"{side[:-1] if side == 'fallbacks' else side} {kind} {alg} x{n}"
                for (side, kind, alg), n in sorted(new.items())
            )
            tr.write_line(f"  {nodeid}: {what}")
