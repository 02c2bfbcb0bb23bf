"""Untracked globals, made visible: module-level names a stage reads that no key covers.

Helpers not listed in ``deps=[...]`` and module-level constants are by design outside a stage's
fingerprint (its source text is in; what its names point to is not). Editing one changes
results without changing keys: the most common false hit in every caching framework. At
decoration, the names a stage's code loads as globals are resolved; those bound to user code
(functions, classes, constants of modules that are not the standard library, installed
packages or physflow itself) and not covered (deps, other stages, configs, modules) are named
in one warning per stage with the fix. ``@pf.stage(warn_untracked=False)`` silences it.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import os
import sys
import sysconfig
import types
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import msgspec


class UntrackedGlobalsWarning(UserWarning):
    """A stage reads module-level names that are not part of its cache key."""


def _global_names(code: types.CodeType) -> set[str]:
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        for ins in dis.get_instructions(current):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                names.add(ins.argval)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return names


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # physflow itself
    return tuple(os.path.realpath(r) + os.sep for r in roots)


@functools.lru_cache(maxsize=512)
def is_user_module(name: str) -> bool:
    """Not the standard library, an installed package, or physflow."""
    if name in sys.builtin_module_names or name.split(".")[0] in ("physflow", "builtins"):
        return False
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if not path:
        return False  # built in, frozen or namespace: not a user file
    return not os.path.realpath(path).startswith(_library_roots())


@functools.lru_cache(maxsize=256)
def _module_assignments(name: str) -> frozenset[str]:
    """Names a module binds by assignment at its top level (its own constants)."""
    module = sys.modules.get(name)
    try:
        tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    found = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            found.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return frozenset(found)


def _untracked(func: Any, value: Any, name: str) -> bool:
    """Whether ``value`` (bound to global ``name`` of ``func``'s module) is user code no key
    covers."""
    if isinstance(value, types.ModuleType) or hasattr(value, "fingerprint"):
        return False  # modules (their attributes are not chased), other stages
    if isinstance(value, type) and issubclass(value, msgspec.Struct):
        return False  # configs and value types: their values are digested
    if callable(value) or isinstance(value, type):
        module = getattr(inspect.unwrap(value), "__module__", None) if callable(value) else None
        return bool(module) and is_user_module(module)
    return name in _module_assignments(func.__module__)  # a constant of the stage's module


def untracked_globals(func: Any, covered: Iterable[Any]) -> list[str]:
    """Names of user globals ``func`` reads that ``covered`` (deps) does not list."""
    if not is_user_module(func.__module__):
        return []
    ids = {id(dep) for dep in covered} | {id(inspect.unwrap(d)) for d in covered if callable(d)}
    found = []
    for name in sorted(_global_names(func.__code__)):
        if name not in func.__globals__:
            continue  # a builtin
        value = func.__globals__[name]
        if id(value) in ids or (callable(value) and id(inspect.unwrap(value)) in ids):
            continue
        if _untracked(func, value, name):
            found.append(name)
    return found


def warn_untracked(func: Callable[..., Any], deps: Iterable[Any], where: str) -> None:
    names = untracked_globals(func, list(deps))
    if names:
        listed = ", ".join(names)
        warnings.warn(
            UntrackedGlobalsWarning(
                f"{where} reads {listed} from module level; a change there would not change "
                f"its cache key (a false hit). List them: @pf.stage(deps=[{listed}]), or bump "
                "version= whenever they change (warn_untracked=False silences this)."
            ),
            stacklevel=4,
        )
