"""Code fingerprints: what a stage's result depends on besides its config and inputs.

Source is normalised through the AST (comments, formatting, docstrings and decorators do not
count); helpers a stage calls are *not* discovered automatically, so stages list them in
``deps=[...]`` or bump ``version`` when they change (docs/architecture.md, "What is in a key").
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import textwrap
import types
from typing import Any

from .framing import merkle
from .hashing import UnhashableValueError, digest


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:] or [ast.Pass()]
    return body


class _Normaliser(ast.NodeTransformer):
    def _clean(self, node: Any) -> Any:
        node.decorator_list = []
        node.body = _strip_docstring(node.body)
        self.generic_visit(node)
        return node

    visit_FunctionDef = _clean
    visit_AsyncFunctionDef = _clean
    visit_ClassDef = _clean


def normalised_source(obj: Any) -> str:
    """A formatting-independent text of ``obj``'s definition, or of its bytecode if no source."""
    try:
        filename = inspect.getsourcefile(obj)
        if filename:
            linecache.checkcache(filename)  # the file may have changed since it was last read
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        code = getattr(obj, "__code__", None)
        if code is None:
            raise
        defaults = (getattr(obj, "__defaults__", None), getattr(obj, "__kwdefaults__", None))
        return "code:" + digest((_code_token(code), _const_token(defaults)))
    tree = _Normaliser().visit(tree)
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _code_token(code: types.CodeType) -> tuple:
    consts = tuple(_const_token(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names, code.co_varnames)


def _const_token(c: Any) -> Any:
    """Every constant counts (folded tuples and frozensets too: ``x + (1, 2)``); values without
    a digest rule count by type and repr (a needless miss at worst, never a false hit)."""
    if isinstance(c, types.CodeType):
        return _code_token(c)
    if type(c) is tuple:
        return ("tuple", tuple(_const_token(x) for x in c))
    if type(c) is frozenset:
        return ("frozenset", tuple(sorted(digest(_const_token(x)) for x in c)))
    if type(c) is dict:
        return ("dict", {k: _const_token(v) for k, v in c.items()})
    try:
        return ("value", digest(c))
    except UnhashableValueError:
        return ("repr", type(c).__qualname__, repr(c))


def dependency_token(dep: Any) -> str:
    """Functions and classes count by normalised source; other values by their digest.

    Decorated helpers (``functools.lru_cache``, ``functools.wraps`` wrappers) count by the
    function they wrap, ``functools.partial`` objects by their function and arguments.
    """
    if hasattr(dep, "fingerprint") and hasattr(dep, "func"):  # another Stage
        return f"stage:{dep.fingerprint}"
    if isinstance(dep, functools.partial):
        return "partial:" + dependency_token(dep.func) + digest((dep.args, dep.keywords))
    if hasattr(dep, "__wrapped__") and not isinstance(dep, type) and callable(dep):
        dep = inspect.unwrap(dep)
    if isinstance(dep, types.FunctionType | type | types.MethodType):
        target = getattr(dep, "__wrapped__", dep)
        return f"{dep.__module__}:{dep.__qualname__}:{normalised_source(target)}"
    return "value:" + digest(dep)


def stage_fingerprint(
    qualified_name: str,
    version: str,
    func: Any,
    deps: tuple,
    outputs: tuple[str, ...] | None = None,
) -> str:
    """Decorator arguments that shape results (``outputs``) count; the decorator's source does
    not (it is stripped), so they are added explicitly."""
    return merkle(
        "physflow.stage.v1",
        qualified_name,
        version,
        normalised_source(func),
        "outputs:" + ("-" if outputs is None else ",".join(outputs)),
        *(dependency_token(dep) for dep in deps),
    )
