"""The package's layers, checked on every import statement (lazy ones inside functions
included): no import goes up a layer, no modules import each other in a circle, and stage packs
use only the public API. Imports under ``if TYPE_CHECKING:`` name types for annotations only
(never executed): they may not go up a layer either, but are left out of the circle check.

Layers, bottom to top (docs/architecture.md): core -> artifacts -> manifests -> executors ->
pipeline -> scans, ml -> stages, interop -> cli. Executors sit below the pipeline: the runner
hands them jobs; they never import the graph, plan or runner.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "physflow"
LAYERS = {
    "core": 0,
    "artifacts": 1,
    "manifests": 2,
    "executors": 3,
    "pipeline": 4,
    "scans": 5,
    "ml": 5,
    "stages": 6,
    "interop": 6,
    "cli": 7,
}
#: The public API (``physflow/__init__.py``: lazy re-exports) may be imported from these layers.
API_USERS = {"scans", "ml", "stages", "interop", "cli"}
#: Late-bound calls of a higher layer by name (documented conveniences), and why.
UPCALLS = {
    ("physflow.pipeline.graph", "physflow.scans.run"): "Pipeline.scan() is public API",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the statements inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imports(name: str, path: Path, type_only: bool) -> set[str]:
    """physflow modules that ``name`` imports anywhere in its source (with ``type_only``:
    including ``TYPE_CHECKING`` imports)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    skip = set() if type_only else _type_only_nodes(tree)
    if name == "physflow":  # the root's lazy re-exports (inside __getattr__) are not imports
        skip |= {
            id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)
        }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    out = set()
    for target in found:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target.startswith("physflow") and target != name:
            out.add(target)
    return out


#: every import (for the layer checks)
ALL_IMPORTS = {name: _imports(name, path, True) for name, path in MODULES.items()}
#: imports that run (for the circle check), without the documented upcalls
GRAPH = {
    name: {t for t in _imports(name, path, False) if (name, t) not in UPCALLS}
    for name, path in MODULES.items()
}


def _group(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_package_has_a_layer():
    groups = {_group(m) for m in MODULES} - {None}
    assert groups <= set(LAYERS), groups - set(LAYERS)


def test_no_import_goes_up_a_layer():
    bad = []
    for source, targets in ALL_IMPORTS.items():
        group = _group(source)
        for target in targets:
            tgroup = _group(target)
            if group is None or (source, target) in UPCALLS:
                continue
            if tgroup is None:
                if group not in API_USERS:
                    bad.append(f"{source} -> physflow (the public API; only {API_USERS})")
            elif LAYERS[tgroup] > LAYERS[group]:
                bad.append(f"{source} -> {target}")
    assert not bad, "imports that go up a layer:\n" + "\n".join(sorted(bad))


def _public_for_packs(target: str) -> bool:
    """The root API, other stage modules, and physflow.ml (but not its engine adapter)."""
    group = _group(target)
    if group in (None, "stages"):
        return True
    return group == "ml" and not target.startswith("physflow.ml._")


def test_stage_packs_use_only_the_public_api():
    bad = [
        f"{source} -> {target}"
        for source, targets in ALL_IMPORTS.items()
        if _group(source) == "stages"
        for target in targets
        if not _public_for_packs(target)
    ]
    assert not bad, "stage packs importing internals:\n" + "\n".join(sorted(bad))


def test_no_import_circles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    circles: list[list[str]] = []
    counter = 0
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
    assert not circles, f"modules importing each other in a circle: {circles}"


def test_a_circle_would_be_found():
    """The checker itself: a synthetic two-module circle is reported."""
    saved = dict(GRAPH)
    assert "physflow.core.value_rules" in saved["physflow.core.hashing"]
    try:
        GRAPH["physflow.core.value_rules"] = {
            *saved["physflow.core.value_rules"],
            "physflow.core.hashing",
        }
        try:
            test_no_import_circles()
        except AssertionError as exc:
            assert re.search(r"physflow\.core\.hashing.*physflow\.core\.value_rules", str(exc))
        else:
            raise AssertionError("the circle core.hashing <-> core.value_rules was not found")
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
