"""kcapi_hashlib's import graph, read from the source (ast):

- no import cycle in the whole package, counting imports made inside functions and under TYPE_CHECKING too (a
  function-level import is how a cycle hides). Within the AF_ALG layer: files <- procfs <- restrict <- core <-
  drivers, hash, keyed, ...; above it, Cipher's mode modules take what they share from Cipher/_common.py, not from
  the Cipher package, and _install takes what it needs from _hashes, not from the kcapi_hashlib package.
- one way in to the AF_ALG layer: a module outside kcapi_hashlib/_afalg/ imports only the names (submodules
  included) that kcapi_hashlib/_afalg/__init__.py lists in __all__, from that package, never from a submodule.
- no private name crosses a package line: a name with a leading underscore that a module defines (a function, a
  class, a constant) is used only by modules of its own package. Private modules (_hashes, _policy, _afalg) are
  the distribution's internal interfaces and may be imported by any of its packages; what they share has a public
  name.
- no module of the package is longer than MAX_LINES: one that grows past it is split where what it owns divides.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kcapi_hashlib"
AFALG = "kcapi_hashlib._afalg"
MAX_LINES = 600


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(top: Path = PACKAGE, root: Path = ROOT) -> dict[str, Path]:
    return {_module(p, root): p for p in top.rglob("*.py")}


def _package(name: str, path: Path) -> str:
    """The package `name` belongs to: itself for a package's __init__.py."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str, path: Path) -> Iterator[tuple[ast.stmt, str, list[ast.alias]]]:
    """(node, the absolute module it imports from or imports, its aliases) for every import statement."""
    package = _package(name, path).split(".")
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, [alias]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            yield node, ".".join([*base, *([node.module] if node.module else [])]), node.names


def _graph(top: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(top)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node, module, aliases in _imports(name, path):
            names = aliases if isinstance(node, ast.ImportFrom) else []
            submodules = {f"{module}.{alias.name}" for alias in names} & set(modules)
            deps |= submodules or {module}  # `from . import core` depends on core, not on the package
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` as a path (first == last), or [] if there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_afalg_layer_has_no_import_cycle() -> None:
    graph = _graph(PACKAGE / "_afalg")
    assert {f"{AFALG}.core", f"{AFALG}.procfs", f"{AFALG}.restrict"} <= set(graph)
    assert _cycle(graph) == []
    assert f"{AFALG}.files" in graph[f"{AFALG}.procfs"]  # the scan sees edges


def test_the_package_has_no_import_cycle() -> None:
    graph = _graph()
    assert _cycle(graph) == []
    # the scan sees the edges that made the cycles this test keeps out: function-level imports among them
    assert "kcapi_hashlib._hashes" in graph["kcapi_hashlib._install"]
    assert "kcapi_hashlib.Cipher._mode_ecb" in graph["kcapi_hashlib.Cipher"]
    assert "kcapi_hashlib.Cipher._common" in graph["kcapi_hashlib.Cipher._mode_ecb"]


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def _afalg_all(modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(modules[AFALG].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("kcapi_hashlib/_afalg/__init__.py has no __all__")


def _afalg_entries(modules: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Every way a module outside the AF_ALG layer comes into it other than a name of its __all__."""
    exported = _afalg_all(modules)
    found = []
    for name, path in sorted(modules.items()):
        if name == AFALG or name.startswith(f"{AFALG}."):
            continue
        for node, module, aliases in _imports(name, path):
            where = f"{path.relative_to(root)}:{node.lineno}"
            if module.startswith(f"{AFALG}."):
                found.append(f"{where}: imports {module}")
            elif module == AFALG:
                found += [f"{where}: {a.name} is not in _afalg.__all__" for a in aliases if a.name not in exported]
    return found


def test_one_way_in_to_the_afalg_layer() -> None:
    exported = _afalg_all(_modules())
    assert {"core", "skcipher", "HashStream", "AlgUnavailable"} <= exported
    assert _afalg_entries(_modules()) == []


def _private_crossings(modules: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Private names (one leading underscore, not a module) a module takes from a module of another package: by
    `from M import _name`, or as `M._name` through a name bound to module M."""
    found = []
    for name, path in sorted(modules.items()):
        own = _package(name, path)
        bound: dict[str, str] = {}  # local name -> the kcapi_hashlib module it is bound to
        for node, module, aliases in _imports(name, path):
            where = f"{path.relative_to(root)}:{node.lineno}"
            if isinstance(node, ast.Import):  # `import a.b` binds a, `import a.b as c` binds c to a.b
                alias = aliases[0]
                if module in modules:
                    bound[alias.asname or module.partition(".")[0]] = module if alias.asname else module.split(".")[0]
                continue
            for alias in aliases:
                target = f"{module}.{alias.name}"
                if target in modules:
                    bound[alias.asname or alias.name] = target
                elif (
                    module in modules
                    and alias.name.startswith("_")
                    and not alias.name.startswith("__")
                    and _package(module, modules[module]) != own
                ):
                    found.append(f"{where}: {alias.name} from {module}")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute):
                continue
            chain: list[str] = []
            value: ast.expr = node
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if not isinstance(value, ast.Name) or value.id not in bound:
                continue
            module = bound[value.id]
            while chain and f"{module}.{chain[0]}" in modules:  # kcapi_hashlib._afalg.core.x: through the modules
                module = f"{module}.{chain.pop(0)}"
            attr = chain[0] if chain else ""
            if attr.startswith("_") and not attr.startswith("__") and _package(module, modules[module]) != own:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {attr} of {module}")
    return sorted(set(found))


def test_no_private_name_crosses_a_package_line() -> None:
    assert _private_crossings(_modules()) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    # a copy-shaped tree: kcapi_hashlib/{_afalg/{__init__,core}.py, cli/x.py, hmac.py}
    top = tmp_path / "kcapi_hashlib"
    (top / "_afalg").mkdir(parents=True)
    (top / "cli").mkdir()
    (top / "__init__.py").write_text("")
    (top / "_afalg" / "__init__.py").write_text("from . import core\n__all__ = ['core']\n")
    (top / "_afalg" / "core.py").write_text("def _hidden() -> None: ...\n")
    (top / "cli" / "__init__.py").write_text("")
    (top / "hmac.py").write_text("def _kernel() -> None: ...\n")
    (top / "cli" / "x.py").write_text(
        "from .._afalg import core, _secret\n"
        "from .._afalg.core import _hidden\n"
        "from ..hmac import _kernel\n"
        "core._hidden()\n"
    )
    modules = _modules(top, tmp_path)
    assert _afalg_entries(modules, tmp_path) == [
        "kcapi_hashlib/cli/x.py:1: _secret is not in _afalg.__all__",
        "kcapi_hashlib/cli/x.py:2: imports kcapi_hashlib._afalg.core",
    ]
    assert _private_crossings(modules, tmp_path) == [
        "kcapi_hashlib/cli/x.py:1: _secret from kcapi_hashlib._afalg",
        "kcapi_hashlib/cli/x.py:2: _hidden from kcapi_hashlib._afalg.core",
        "kcapi_hashlib/cli/x.py:3: _kernel from kcapi_hashlib.hmac",
        "kcapi_hashlib/cli/x.py:4: _hidden of kcapi_hashlib._afalg.core",
    ]


def test_no_module_is_longer_than_max_lines() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert "kcapi_hashlib._hashes" in lengths
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
