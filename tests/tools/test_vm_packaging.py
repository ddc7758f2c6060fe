"""The kernel VM runner is a development tool of the repository (dev/vm, the kcapi_vm package), not part of the
runtime wheel: the wheel holds no runner; `kcapi-hashlib vm` from an installed package without a checkout says
where the runner is instead of failing with an ImportError; and the runner installs host packages with apt-get
only when $KCAPI_HASHLIB_VM_INSTALL says so, naming what is missing otherwise."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.util import find_spec
from pathlib import Path

import pytest

from kcapi_vm import packages
from kcapi_vm.exits import EXIT_SETUP, VMError

ROOT = Path(__file__).resolve().parents[2]
# What a build of the runtime distribution reads (pyproject.toml, setup.py, MANIFEST.in and what they name).
_BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "kcapi_hashlib.pth",
                 "kcapi_hashlib.start", "kcapi_hashlib", "dev")  # fmt: skip


def _copy_source(into: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in _BUILD_INPUTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, into / name, ignore=ignore)
        else:
            shutil.copy2(src, into / name)
    return into


def test_the_runtime_wheel_holds_no_vm_runner(tmp_path: Path) -> None:
    if find_spec("setuptools") is None:  # the wheel is built offline, with this interpreter's setuptools
        pytest.skip(f"{sys.executable} has no setuptools to build the wheel with (the 3.11 environment has)")
    (tmp_path / "src").mkdir()
    source = _copy_source(tmp_path / "src")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "--no-index", "-w",
         str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("kcapi_hashlib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kcapi_hashlib/cli/__init__.py" in names and "kcapi_hashlib/_afalg/core.py" in names
    runner = [n for n in names if n.startswith(("kcapi_vm/", "kcapi_hashlib/vm/", "dev/"))]
    assert runner == [], runner
    modules = [n for n in names if n.endswith(".py")]
    assert [n for n in modules if b"apt-get" in zipfile.ZipFile(wheel).read(n)] == []  # none installs packages


def test_vm_from_an_installed_package_without_the_runner_says_where_it_is(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "kcapi_hashlib", tmp_path / "kcapi_hashlib", ignore=shutil.ignore_patterns("__pycache__"))
    # -S: no site-packages (where a kcapi_vm may be installed); the copy is imported from the working directory
    ran = subprocess.run(
        [sys.executable, "-S", "-m", "kcapi_hashlib", "vm", "--", "true"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.startswith("kcapi-hashlib: vm: the kernel VM runner is a development tool of the source ")
    assert "pip install ./dev/vm" in ran.stderr and "Traceback" not in ran.stderr


def test_vm_from_a_checkout_uses_the_checkouts_runner() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "kcapi_hashlib", "vm", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert "$KCAPI_HASHLIB_VM_INSTALL=1" in " ".join(ran.stdout.split())


def test_vm_from_a_checkout_with_the_package_imported_from_elsewhere_uses_the_checkouts_runner(tmp_path: Path) -> None:
    # Python 3.15's kcapi_hashlib.start imports the installed package at start-up, so `python -m kcapi_hashlib vm`
    # run in a checkout gets site-packages' copy (no dev/vm beside it): the working directory is the checkout.
    shutil.copytree(ROOT / "kcapi_hashlib", tmp_path / "kcapi_hashlib", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import kcapi_hashlib\n"
        f"assert kcapi_hashlib.__file__.startswith({str(tmp_path)!r}), kcapi_hashlib.__file__\n"
        "from kcapi_hashlib.cli import main; sys.exit(main(['vm', '--help']))\n"
    )
    ran = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("usage: python -m kcapi_hashlib vm [options] -- CMD [ARGS...]")


_MISSING = {"/nonexistent/kcapi-vm-test-tool": "kcapi-no-such-package"}


@pytest.mark.parametrize("setting", [None, "", "0", "no", "off"])
def test_missing_host_packages_are_named_and_not_installed_unless_told(
    monkeypatch: pytest.MonkeyPatch, setting: str | None
) -> None:
    if setting is None:
        monkeypatch.delenv(packages.INSTALL_ENV, raising=False)
    else:
        monkeypatch.setenv(packages.INSTALL_ENV, setting)
    installs: list[object] = []
    monkeypatch.setattr(packages, "_apt_install", installs.append)  # apt-get itself: must not be reached
    with pytest.raises(VMError) as info:
        packages.ensure_packages(_MISSING)
    assert info.value.code == EXIT_SETUP
    assert str(info.value) == (
        "missing prerequisites: kcapi-no-such-package; install them (as root: apt-get install "
        "kcapi-no-such-package), or let the runner install them with apt-get: KCAPI_HASHLIB_VM_INSTALL=1"
    )
    assert installs == []


def test_an_unknown_install_setting_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(packages.INSTALL_ENV, "maybe")
    with pytest.raises(VMError) as info:
        packages.ensure_packages(_MISSING)
    assert info.value.code == EXIT_SETUP
    assert str(info.value) == "$KCAPI_HASHLIB_VM_INSTALL must be 1/yes/true/on or 0/no/false/off, not 'maybe'"


def test_present_tools_need_no_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(packages.INSTALL_ENV, "maybe")  # never read when nothing is missing
    packages.ensure_packages({sys.executable: "python3"})
