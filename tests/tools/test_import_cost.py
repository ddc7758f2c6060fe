"""What `import kcapi_hashlib` and the pytest plugin load: the package is lazy (PEP 562), so importing it loads no
module of its own and no standard library module beyond hashlib's; the pytest plugin without --kcapi imports none
of the library (a bad KCAPI_HASHLIB_POLICY does not break a pytest run that did not ask for kcapi_hashlib). The
module counts are deterministic; the times are benchmarks/import_cost.py's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import kcapi_hashlib

TIMEOUT = 240
ROOT = Path(kcapi_hashlib.__file__).resolve().parents[1]


def _modules_loaded_by(statement: str) -> list[str]:
    """The modules `statement` adds to sys.modules after `import hashlib`, in a fresh `python -I -S` (no site:
    nothing but the interpreter's own start-up modules before)."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import hashlib, json; before = set(sys.modules)\n"
        f"{statement}\nprint(json.dumps(sorted(set(sys.modules) - before)))"
    )
    ran = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert ran.returncode == 0, ran.stderr
    return list(json.loads(ran.stdout))


def test_import_kcapi_hashlib_loads_nothing_but_the_package() -> None:
    # Before: 46 modules (typing, inspect, ast, dis, tempfile, json, ctypes, platform, socket, ...; 27 of them stdlib
    # beyond what site had loaded).
    loaded = _modules_loaded_by("import kcapi_hashlib")
    assert loaded == ["kcapi_hashlib"]


def test_first_use_loads_the_library() -> None:
    loaded = _modules_loaded_by("import kcapi_hashlib; kcapi_hashlib.sha256")
    assert "kcapi_hashlib._hashes" in loaded and "kcapi_hashlib._afalg.core" in loaded


def test_submodules_stay_attributes_of_the_package() -> None:
    # `import kcapi_hashlib; kcapi_hashlib.hmac.new(...)` worked when the package imported them eagerly; the lazy
    # package first raised AttributeError for them (test_launcher relied on another test having imported them).
    loaded = _modules_loaded_by(
        "import kcapi_hashlib\n"
        "for name in ('hmac', 'keyring', 'Cipher', 'Hash', 'Protocol', 'Random', 'Util'):\n"
        "    assert getattr(kcapi_hashlib, name).__name__ == 'kcapi_hashlib.' + name, name"
    )
    assert "kcapi_hashlib.hmac" in loaded and "kcapi_hashlib.keyring" in loaded


# What the interpreter itself loads of the package at start-up: 3.15+ run the kcapi_hashlib.start entry point
# (PEP 829) at every start, which imports kcapi_hashlib._autoinstall (and the lazy package) to read
# KCAPI_HASHLIB_INSTALL; older Pythons' .pth line imports nothing unless it is set.
_AT_STARTUP = "import sys; print(','.join(sorted(m for m in sys.modules if m.startswith('kcapi_hashlib'))))"

SUITE = """\
import hashlib, os, sys

def test_nothing_of_the_library_was_imported():
    at_startup = set(filter(None, os.environ["KCAPI_TEST_AT_STARTUP"].split(",")))
    assert sorted(m for m in sys.modules if m.startswith("kcapi_hashlib") and m not in at_startup) == sorted(
        {"kcapi_hashlib", "kcapi_hashlib.pytest_plugin"} - at_startup
    )
    assert hashlib.sha256.__module__ == "_hashlib"
"""


def _pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KCAPI_HASHLIB_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    environ.update(env)
    startup = subprocess.run([sys.executable, "-c", _AT_STARTUP], env=environ, capture_output=True, text=True)
    assert startup.returncode == 0, startup.stderr
    at_startup = startup.stdout.strip()
    # the start-up hook itself stays light: the lazy package and the module that reads the environment, no more
    assert set(filter(None, at_startup.split(","))) <= {"kcapi_hashlib", "kcapi_hashlib._autoinstall"}, at_startup
    environ["KCAPI_TEST_AT_STARTUP"] = at_startup
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "kcapi_hashlib.pytest_plugin", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*argv, "--rootdir", str(tmp_path), *args, "test_suite.py"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def test_pytest_plugin_without_the_option_imports_nothing_and_ignores_a_bad_policy(tmp_path: Path) -> None:
    # Before: the plugin imported kcapi_hashlib (its whole library) at load, and KCAPI_HASHLIB_POLICY=garbage made
    # every pytest run of the environment fail with a ValueError while loading plugins.
    ran = _pytest(tmp_path, KCAPI_HASHLIB_POLICY="garbage")
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr


def test_pytest_plugin_ini_option_turns_it_on(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nkcapi = true\n")
    ran = _pytest(tmp_path, "-c", str(tmp_path / "pytest.ini"))
    assert "1 failed" in ran.stdout, ran.stdout + ran.stderr  # the suite's assertion fails: the library is in use
    assert "kcapi_hashlib accounting (policy strict)" in ran.stdout
