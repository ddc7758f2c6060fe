"""Where the command line and the VM runner sit: kcapi_hashlib/cli/ and dev/vm/kcapi_vm/ are entry points that
the library never imports; the runner asks kcapi_hashlib._afalg about AF_ALG instead of opening sockets; the
console script named in pyproject.toml resolves. Read from the source (ast) and checked in a fresh interpreter."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kcapi_hashlib"
RUNNER = ROOT / "dev" / "vm"
ENTRY_POINTS = ("kcapi_hashlib.cli", "kcapi_vm")
ENTRY_FILES = ("kcapi_hashlib.__main__",)  # python -m kcapi_hashlib: the command line's


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement in `path` names, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _library_files() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if _module_name(p) not in ENTRY_FILES and not any(_module_name(p).startswith(e) for e in ENTRY_POINTS)
    ]


def test_the_library_never_imports_the_cli_or_the_vm() -> None:
    files = _library_files()
    assert len(files) > 20, files  # the scan sees the library (Hash/, Cipher/, _afalg/, ...)
    offenders = {
        _module_name(p): sorted(n for n in _imports(p) if any(n == e or n.startswith(e + ".") for e in ENTRY_POINTS))
        for p in files
    }
    assert {m: n for m, n in offenders.items() if n} == {}


def test_importing_the_library_loads_neither() -> None:
    script = (
        "import sys, kcapi_hashlib, kcapi_hashlib.hmac\n"
        "from kcapi_hashlib import Hash, Cipher, Protocol, Random, Util\n"
        "from kcapi_hashlib.Hash import SHA256, HMAC, CMAC\n"
        "from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305\n"
        "from kcapi_hashlib.Protocol import KDF\n"
        f"print(sorted(m for m in sys.modules if m.startswith({ENTRY_POINTS!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_vm_runner_opens_no_af_alg_socket() -> None:
    """It asks kcapi_hashlib._afalg.af_alg_status(); no socket.socket() call and no address family 38 here."""
    files = sorted((RUNNER / "kcapi_vm").rglob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("socket", "AF_ALG", "socketpair"), (path.name, node.lineno)
            if isinstance(node, ast.Name):
                assert node.id != "AF_ALG", (path.name, node.lineno)
    assert "kcapi_hashlib._afalg.af_alg_status" in {
        f"{n}" for p in files for n in _imports(p) if n.endswith("af_alg_status")
    }


def test_the_cli_makes_no_socket_call() -> None:
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        assert not {n for n in _imports(path) if n == "socket" or n.startswith("socket.")}, path.name


def test_the_console_script_resolves() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^\[project\.scripts\]\s*\nkcapi-hashlib = "([\w.]+):(\w+)"', text, re.M)
    assert match is not None, "pyproject.toml names the kcapi-hashlib console script"
    target = getattr(importlib.import_module(match.group(1)), match.group(2))
    assert callable(target)
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.argv = ['kcapi-hashlib', '--help']; "
         f"from {match.group(1)} import {match.group(2)} as m; m()"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kcapi-hashlib ")


@pytest.mark.parametrize("module", ["kcapi_hashlib", "kcapi_vm"])
def test_vm_help_from_both_entry_points(module: str) -> None:
    args = ["vm", "--help"] if module == "kcapi_hashlib" else ["--help"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(RUNNER), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m kcapi_hashlib vm [options] -- CMD [ARGS...]")
    assert "124 timeout; 125 VM failure" in result.stdout
