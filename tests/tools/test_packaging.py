"""Packaging: one version source (kcapi_hashlib.__version__, read by setuptools without importing the package, and
printed by `kcapi-hashlib --version`), the MIT LICENSE, and the files an sdist must carry (the start-up hook files
and the tests). `python -m build` itself needs the network for its build environment: the README says how to check
the archives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kcapi_hashlib

# The source tree (the repository, or the unpacked sdist) this test file lives in: not where kcapi_hashlib was imported
# from, which is site-packages where the start-up hook imported it first (3.15's kcapi_hashlib.start).
ROOT = Path(__file__).resolve().parents[2]


def test_version_is_printed_by_the_command_line() -> None:
    ran = subprocess.run([sys.executable, "-m", "kcapi_hashlib", "--version"], capture_output=True, text=True)
    assert (ran.returncode, ran.stdout) == (0, f"kcapi-hashlib {kcapi_hashlib.__version__}\n"), ran.stderr


def test_setuptools_reads_the_version_without_importing_the_package() -> None:
    import ast

    tree = ast.parse((ROOT / "kcapi_hashlib" / "__init__.py").read_text())
    assigned = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    assert assigned == [kcapi_hashlib.__version__]  # a plain literal assignment: setuptools' attr reads it statically
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'version = { attr = "kcapi_hashlib.__version__" }' in pyproject
    assert 'dynamic = ["version"]' in pyproject and '\nversion = "' not in pyproject


def test_license_and_sdist_contents_are_declared() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = "MIT"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    manifest = (ROOT / "MANIFEST.in").read_text()
    for needed in ("kcapi_hashlib.pth", "kcapi_hashlib.start", "conftest.py", "recursive-include tests"):
        assert needed in manifest, needed
