"""The start-up hook fails closed (KCAPI_HASHLIB_INSTALL / KCAPI_HASHLIB_POLICY: only documented values, anything
else stops the program with one line before its first line runs), does nothing under -E / -I, reaches a program
through kcapi_hashlib.pth (Python < 3.15) and kcapi_hashlib.start (PEP 829, 3.15+: the .pth's import line is then
skipped), and install() is all-or-nothing. Every program runs in a fresh interpreter under the real kernel."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kcapi_hashlib
from kcapi_hashlib import _autoinstall, _install

TIMEOUT = 240
ROOT = Path(kcapi_hashlib.__file__).resolve().parents[1]
APP = "import hashlib\nprint('ran', hashlib.sha256.__module__)\n"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCAPI_HASHLIB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def _site(tmp_path: Path, python: str, files: tuple[str, ...] = ("kcapi_hashlib.pth", "kcapi_hashlib.start")) -> str:
    """A venv of `python` whose site-packages holds the repository (a path line) and the hook `files`, as an
    installed wheel puts them there (setup.py); its interpreter's path."""
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=TIMEOUT)
    exe = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [exe, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=TIMEOUT,
    ).stdout.strip()  # fmt: skip
    # "_" sorts before "k": on Pythons before 3.15 site.py runs each .pth in name order, path lines and all.
    Path(purelib, "_kcapi_hashlib_repo.pth").write_text(f"{ROOT}\n")
    for name in files:
        shutil.copy(ROOT / name, Path(purelib, name))
    return exe


def _app(tmp_path: Path, source: str = APP) -> str:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _site(tmp_path_factory.mktemp("hook"), sys.executable)


# --- which values turn the hook on --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On"])
def test_documented_on_values_turn_the_hook_on(venv: str, tmp_path: Path, value: str) -> None:
    ran = _run([venv, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL=value)
    assert (ran.returncode, ran.stdout) == (0, "ran kcapi_hashlib\n"), ran.stderr


@pytest.mark.parametrize("value", ["", "0", "false", "No", "OFF"])
def test_documented_off_values_leave_it_off(venv: str, tmp_path: Path, value: str) -> None:
    ran = _run([venv, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL=value)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "ran _hashlib\n", "")


@pytest.mark.parametrize("value", ["garbage", "00", " 0", "1 ", "2", "enable"])
def test_any_other_value_stops_the_program_with_one_line(venv: str, tmp_path: Path, value: str) -> None:
    # Before: " 0", "00", "2", "garbage" all turned the hook on.
    ran = _run([venv, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL=value)
    assert ran.returncode == _autoinstall.EXIT_CONFIG
    assert ran.stdout == ""  # the program never ran
    assert ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr.startswith(f"kcapi_hashlib: KCAPI_HASHLIB_INSTALL={value!r} is not a value"), ran.stderr
    assert ran.stderr.endswith("; the program was not run\n")


def test_an_invalid_policy_stops_the_program_when_the_hook_is_on(venv: str, tmp_path: Path) -> None:
    # Before: a traceback from site.py, then the program ran on OpenSSL's hashlib with exit status 0.
    ran = _run([venv, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL="1", KCAPI_HASHLIB_POLICY="garbage")
    assert (ran.returncode, ran.stdout) == (_autoinstall.EXIT_CONFIG, ""), ran.stderr
    assert ran.stderr == (
        "kcapi_hashlib: KCAPI_HASHLIB_POLICY='garbage' is not a policy; use one of strict, fallback; "
        "the program was not run\n"
    )
    off = _run([venv, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_POLICY="garbage")  # hook off: not its business
    assert (off.returncode, off.stdout) == (0, "ran _hashlib\n"), off.stderr


def test_the_launcher_refuses_an_invalid_policy_in_one_line(tmp_path: Path) -> None:
    ran = _run([sys.executable, "-m", "kcapi_hashlib", "run", _app(tmp_path)], tmp_path, KCAPI_HASHLIB_POLICY="x")
    assert (ran.returncode, ran.stdout) == (2, "")
    assert "KCAPI_HASHLIB_POLICY='x' is not a policy" in ran.stderr and "Traceback" not in ran.stderr, ran.stderr


# --- -E and -I: the environment is not read --------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-E", "-I"])
def test_isolated_and_ignore_environment_modes_leave_the_hook_off(venv: str, tmp_path: Path, flag: str) -> None:
    # Before: both honoured KCAPI_HASHLIB_INSTALL (the .pth still runs under -I; only -S skips it).
    for value in ("1", "garbage"):
        ran = _run([venv, flag, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL=value)
        assert (ran.returncode, ran.stdout, ran.stderr) == (0, "ran _hashlib\n", ""), value


def test_policy_environment_is_not_read_under_E(tmp_path: Path) -> None:
    code = "import kcapi_hashlib; print(kcapi_hashlib.get_policy())"
    plain = _run([sys.executable, "-c", code], tmp_path, KCAPI_HASHLIB_POLICY="fallback")
    ignored = _run([sys.executable, "-E", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}"], tmp_path,
                   KCAPI_HASHLIB_POLICY="fallback")  # fmt: skip
    assert (plain.stdout, ignored.stdout) == ("fallback\n", "strict\n"), plain.stderr + ignored.stderr


# --- .pth and .start: the mechanism each Python uses --------------------------------------------------------


def _python(version: str) -> str:
    """Debian sid's CPython `version` as the project's VM runner fetched it (python -m kcapi_vm.pythons
    VERSION, as CI does), or $KCAPI_HASHLIB_PY3xx; skips naming the command when neither is there."""
    from kcapi_vm import pythons

    found = os.environ.get(f"KCAPI_HASHLIB_PY{version.replace('.', '')}") or pythons.cached(version)
    if not found:
        pytest.skip(f"Python {version} is not fetched: run `python3 -m kcapi_vm.pythons {version}` first")
    return str(found)


CHILD = """\
import subprocess, sys
subprocess.run([sys.executable, "-c", "import hashlib; hashlib.sha256(b'child').digest()"], check=True)
print(sys.version_info[:2])
"""


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_launcher_subprocesses_are_kernel_backed_through_the_hook_of_each_python(tmp_path: Path, version: str) -> None:
    exe = _site(tmp_path, _python(version))
    ran = _run([exe, "-m", "kcapi_hashlib", "run", "--json", "--report", "-", _app(tmp_path, CHILD)], tmp_path)
    assert ran.returncode == 0, ran.stderr
    out, report = ran.stdout.split("\n", 1)
    assert out == str(tuple(int(n) for n in version.split(".")))
    import json

    report = json.loads(report)
    assert len(report["processes"]) == 2, report  # the launcher and its subprocess, which reported back
    rows = [r for r in report["kernel"] if r["algorithm"] == "sha256"]
    assert rows and rows[0]["bytes"] == len(b"child"), report


def test_python_3_15_runs_the_start_entry_point_and_skips_the_pth_import_line(tmp_path: Path) -> None:
    exe = _site(tmp_path, _python("3.15"))
    ran = _run([exe, "-v", _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL="1")
    assert ran.returncode == 0 and ran.stdout == "ran kcapi_hashlib\n", ran.stderr[-3000:]
    assert "Executing entry point: kcapi_hashlib._autoinstall:start" in ran.stderr
    assert "kcapi_hashlib.pth are suppressed due to matching" in ran.stderr
    # and with the .pth alone (an install from before the .start), its import line is still honoured on 3.15
    alone = _site(tmp_path / "pth-only", _python("3.15"), ("kcapi_hashlib.pth",))
    ran = _run([alone, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL="1")
    assert ran.stdout == "ran kcapi_hashlib\n", ran.stderr


def test_python_3_14_uses_the_pth_and_ignores_the_start_file(tmp_path: Path) -> None:
    start_only = _site(tmp_path, _python("3.14"), ("kcapi_hashlib.start",))
    ran = _run([start_only, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL="1")
    assert (ran.returncode, ran.stdout) == (0, "ran _hashlib\n"), ran.stderr  # .start means nothing before 3.15
    both = _site(tmp_path / "both", _python("3.14"))
    ran = _run([both, _app(tmp_path)], tmp_path, KCAPI_HASHLIB_INSTALL="1")
    assert (ran.returncode, ran.stdout) == (0, "ran kcapi_hashlib\n"), ran.stderr


def test_the_start_file_names_the_entry_point() -> None:
    lines = [ln for ln in (ROOT / "kcapi_hashlib.start").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines == ["kcapi_hashlib._autoinstall:start"]
    assert callable(_autoinstall.start)


# --- install() is all or nothing ------------------------------------------------------------------------


def test_install_that_fails_part_way_restores_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not kcapi_hashlib.installed()
    before = {name: getattr(hashlib, name) for name in ("sha256", "new", "algorithms_available")}
    # hashlib is replaced first; then a replacement module that does not import fails the call.
    monkeypatch.setattr(_install, "REPLACEMENTS", [*_install.REPLACEMENTS, ("json", "kcapi_hashlib._no_such_module")])
    with pytest.raises(ImportError):
        kcapi_hashlib.install()
    assert not kcapi_hashlib.installed()  # before: True, with hashlib patched and the later modules not
    assert {name: getattr(hashlib, name) for name in before} == before
    assert "__getattr__" not in vars(hashlib)


def test_install_leaves_hashlib_sets_to_first_use() -> None:
    with kcapi_hashlib.patched():
        assert "algorithms_available" not in vars(hashlib)  # not computed (which binds every algorithm) by install
        assert {"sha256", "sha512"} <= hashlib.algorithms_available  # computed now, by hashlib.__getattr__
        from hashlib import algorithms_guaranteed

        assert algorithms_guaranteed <= hashlib.algorithms_available
    assert isinstance(hashlib.algorithms_available, set) and "__getattr__" not in vars(hashlib)


EMPTY_REPORT = "import hashlib, hmac\n"


def test_the_report_of_a_program_that_computes_nothing_has_no_kernel_operations(tmp_path: Path) -> None:
    # Before: 16 operations (install() bound every hash to compute hashlib.algorithms_available).
    app = _app(tmp_path, EMPTY_REPORT)
    ran = _run([sys.executable, "-m", "kcapi_hashlib", "run", "--json", "--report", "-", app], tmp_path)
    import json

    assert ran.returncode == 0 and json.loads(ran.stdout)["kernel"] == [], ran.stdout + ran.stderr
    table = _run([sys.executable, "-m", "kcapi_hashlib", "run", "--report", "-", app], tmp_path)
    assert "no kernel operations" in table.stdout, table.stdout
    one = _app(tmp_path, "import hashlib\nhashlib.sha256(b'a').digest()\n")
    table = _run([sys.executable, "-m", "kcapi_hashlib", "run", "--report", "-", one], tmp_path)
    row = next(line.split() for line in table.stdout.splitlines() if line.strip().startswith("sha256 "))
    assert row == ["sha256", "hash", "4", "1"], table.stdout  # bind, accept, send, recv; one byte
    assert "operations: AF_ALG calls" in table.stdout and "bytes: input handed to the kernel" in table.stdout
