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
import os
import textwrap
import types
import warnings
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
        if getattr(obj, "__code__", None) is None:
            raise
        return code_fingerprint_text(obj)
    tree = _Normaliser().visit(tree)
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


_FUTURE_FLAGS = 0
for _name in ("annotations", "division", "generator_stop"):  # flags that change compilation
    _FUTURE_FLAGS |= getattr(__import__("__future__"), _name).compiler_flag


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    """Same instructions, names and constants (line numbers and file names aside)."""
    return _code_token(a) == _code_token(b) and a.co_freevars == b.co_freevars


_MODULE_CODE: dict[tuple[str, float, int], types.CodeType | None] = {}


def _module_code(filename: str, flags: int) -> types.CodeType | None:
    """The file compiled as it is on disk now (cached per file version): the whole module, so
    the compiler sees its imports as the real import did (3.11 compiles ``mod.f()`` apart for
    names bound by imports)."""
    try:
        stat = os.stat(filename)
        with open(filename, "rb") as fh:
            source = fh.read()
    except OSError:
        return None
    key = (filename, stat.st_mtime, flags)
    if key not in _MODULE_CODE:
        try:
            _MODULE_CODE[key] = compile(source, filename, "exec", flags=flags, dont_inherit=True)
        except (SyntaxError, ValueError):
            _MODULE_CODE[key] = None
    return _MODULE_CODE[key]


def _compiled_twin(func: types.FunctionType) -> types.CodeType | None:
    """``func``'s code compiled afresh from its source file as it is now (None: no source)."""
    code = func.__code__
    filename = inspect.getsourcefile(func)
    if not filename:
        return None
    module = _module_code(filename, code.co_flags & _FUTURE_FLAGS)
    stack = [module] if module is not None else []
    while stack:
        const = stack.pop()
        if const.co_qualname == code.co_qualname:
            return const
        stack.extend(c for c in const.co_consts if isinstance(c, types.CodeType))
    return None


def source_matches_code(func: Any) -> bool:
    """Whether the source file says what the running bytecode does. A stale ``.pyc`` (a tree
    copied with preserved mtimes) runs old code while the file shows new code: keying on the
    text would file the old code's results under the new code's key."""
    code = getattr(func, "__code__", None)
    if code is None:
        return True
    twin = _compiled_twin(func)
    return twin is None or _same_code(twin, code)


def code_fingerprint_text(func: Any) -> str:
    """A token of what actually runs: the bytecode (used when the source cannot be trusted)."""
    defaults = (getattr(func, "__defaults__", None), getattr(func, "__kwdefaults__", None))
    return "code:" + digest((_code_token(func.__code__), _const_token(defaults)))


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


class StaleSourceWarning(UserWarning):
    """A function's source file does not match the bytecode that runs (a stale ``.pyc``)."""


def function_text(func: Any) -> str:
    """What a function's fingerprint is made of: its normalised source, or -- when the source
    file no longer says what the running bytecode does -- the bytecode itself (with a warning),
    so results are always filed under the code that produced them."""
    if source_matches_code(func):
        return normalised_source(func)
    warnings.warn(
        StaleSourceWarning(
            f"{func.__module__}.{func.__qualname__}: its source file does not match the bytecode "
            "Python runs (a stale .pyc, e.g. a tree copied with preserved mtimes); physflow keys "
            "on the bytecode. Delete the __pycache__ directories to run what the file says."
        ),
        stacklevel=3,
    )
    return code_fingerprint_text(func)


def stage_fingerprint(
    qualified_name: str,
    version: str,
    func: Any,
    deps: tuple,
    outputs: tuple[str, ...] | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """Decorator arguments that shape results (``outputs``) count; the decorator's source does
    not (it is stripped), so they are added explicitly. ``extra``: further parts (closure
    values, the config class's methods), added only when present."""
    return merkle(
        "physflow.stage.v1",
        qualified_name,
        version,
        function_text(func),
        "outputs:" + ("-" if outputs is None else ",".join(outputs)),
        *(dependency_token(dep) for dep in deps),
        *extra,
    )


def closure_tokens(func: Any) -> tuple[str, ...]:
    """The values a function's closure captured (a stage made by a factory function): they
    decide its result like a config does. Raises UnhashableValueError naming the variable."""
    cells = getattr(func, "__closure__", None) or ()
    names = func.__code__.co_freevars
    tokens = []
    for name, cell in zip(names, cells):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell (not bound yet)
            continue
        try:
            tokens.append(f"closure:{name}:{dependency_token(value)}")
        except UnhashableValueError as exc:
            raise UnhashableValueError(f"closure variable '{name}': {exc}") from None
    return tuple(tokens)


def class_methods_token(cls: type) -> str | None:
    """The normalised source of a class that defines methods or properties (a config whose
    methods a stage calls), or None for a class of plain fields (its values are digested)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return None
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    if not any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in body):
        return None
    return f"class:{cls.__module__}:{cls.__qualname__}:{normalised_source(cls)}"
