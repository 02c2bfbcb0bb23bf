"""``@physflow.stage``: a plain function becomes a stage with a known signature and fingerprint."""

from __future__ import annotations

import contextlib
import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core.fingerprint import class_methods_token, closure_tokens, stage_fingerprint
from ..core.freeze import deep_freeze
from ..core.hashing import UnhashableValueError
from ..core.refs import SINGLE_OUTPUT
from ..core.value_types import register_annotation, register_module_types
from . import untracked
from .config import Config

#: Keyword-only parameters the runner provides.
RUNTIME_PARAMETERS = ("rng", "ctx")
_RESOURCE_KEYS = ("cpus", "memory_gb", "gpus")


class StageDefinitionError(TypeError):
    """A function cannot be a stage as written; the message says how to fix it."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    required: bool
    default: Any = None


@dataclass(eq=False)
class Stage:
    """A decorated stage function plus everything the runner needs to know about it."""

    func: Callable[..., Any]
    name: str
    version: str
    config_type: type[msgspec.Struct] | None
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...] | None
    uses_rng: bool
    uses_ctx: bool
    deps: tuple[Any, ...] = ()
    allow_pickle: bool = False
    retries: int = 0
    resources: Mapping[str, float] = field(default_factory=dict)
    lazy_inputs: frozenset[str] = frozenset()
    compress: bool | None = None
    fingerprint: str = ""
    #: The closure's values are covered by ``deps`` (stages built by physflow's own adapters).
    closure_in_deps: bool = False

    def __post_init__(self) -> None:
        # Computed now, from the source as imported, not as it may be edited later.
        if not self.fingerprint:
            self.fingerprint = stage_fingerprint(
                self.name, self.version, self.func, self.deps, self.outputs, self._extra_parts()
            )

    def _extra_parts(self) -> tuple[str, ...]:
        """Closure values, and the methods of the config classes the stage reads."""
        try:
            parts = () if self.closure_in_deps else closure_tokens(self.func)
        except UnhashableValueError as exc:
            raise StageDefinitionError(
                f"stage {self.name}: {exc}. A stage made by a factory function is keyed by the "
                "values it captured: pass this one through the config (or deps=[...]) instead."
            ) from None
        for cls in config_classes(self.config_type):
            token = class_methods_token(cls)
            if token is not None:
                parts += (token,)
        return parts

    @functools.cached_property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.outputs if self.outputs is not None else (SINGLE_OUTPUT,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (stages stay testable as plain functions)."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<physflow stage {self.name} v{self.version}>"

    def __reduce__(self) -> tuple:
        # Stages travel to worker processes by import path, never by pickled code.
        return (resolve_stage_path, (self.name,))


def config_classes(config_type: type | None) -> list[type]:
    """The config class and the Struct classes its fields name (nested configs), once each."""
    found: list[type] = []
    stack = [config_type] if config_type is not None else []
    while stack:
        cls = stack.pop()
        if cls in found:
            continue
        found.append(cls)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            continue
        for hint in hints.values():
            for item in [hint, *typing.get_args(hint)]:
                if isinstance(item, type) and issubclass(item, msgspec.Struct):
                    stack.append(item)
    return found


def resolve_stage_path(path: str) -> Stage:
    """Import ``package.module:function`` and return the stage it names."""
    import importlib

    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Stage):
        raise StageDefinitionError(f"{path} is not a physflow stage (decorate it with @pf.stage)")
    return obj


_CONFIG_NAMES = ("cfg", "config", "conf")


def _is_config_type(annotation: Any, name: str) -> bool:
    """A ``physflow.Config`` subclass, or any msgspec Struct on a parameter named like a config.
    Other Struct-annotated parameters are ordinary inputs (value types such as an IQ record)."""
    if not (isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)):
        return False
    return issubclass(annotation, Config) or name in _CONFIG_NAMES


def _describe(func: Callable[..., Any]) -> str:
    return f"stage {func.__module__}.{func.__qualname__}"


def _resolved_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """Annotations as objects; ones that cannot be resolved stay strings."""
    try:
        return typing.get_type_hints(func)
    except Exception:
        hints = dict(getattr(func, "__annotations__", {}))
        for name, annotation in hints.items():
            if isinstance(annotation, str):
                with contextlib.suppress(Exception):
                    hints[name] = eval(annotation, func.__globals__)
        return hints


def _signature_parts(
    func: Callable[..., Any],
) -> tuple[type[msgspec.Struct] | None, tuple[InputSpec, ...], bool, bool]:
    where = _describe(func)
    hints = _resolved_hints(func)
    params = list(inspect.signature(func).parameters.values())
    config_type = None
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        first = params[0]
        annotation = hints.get(first.name)
        if _is_config_type(annotation, first.name):
            config_type = annotation
            params = params[1:]
        elif isinstance(annotation, str):
            raise StageDefinitionError(
                f"{where}: the annotation {annotation!r} of '{first.name}' could not be resolved "
                "(a class defined inside a function, with 'from __future__ import annotations'?). "
                "Define the config class at module level."
            )
        elif first.name in ("cfg", "config", "conf"):
            raise StageDefinitionError(
                f"{where}: its first parameter '{first.name}' looks like a config but is not "
                "annotated with a physflow.Config subclass. Annotate it, e.g. "
                f"'def {func.__name__}({first.name}: MyConfig, ...)'."
            )
    inputs: list[InputSpec] = []
    uses_rng = uses_ctx = False
    for param in params:
        if param.kind is param.VAR_POSITIONAL or param.kind is param.VAR_KEYWORD:
            raise StageDefinitionError(
                f"{where}: *{param.name} / **{param.name} are not allowed; a stage names every "
                "input so the pipeline can check its wiring. List the inputs explicitly."
            )
        if param.kind is param.KEYWORD_ONLY:
            if param.name == "rng":
                uses_rng = True
            elif param.name == "ctx":
                uses_ctx = True
            else:
                raise StageDefinitionError(
                    f"{where}: keyword-only parameter '{param.name}' is not one the runner "
                    f"provides (only {', '.join(RUNTIME_PARAMETERS)}). Make it an ordinary "
                    "input, or move it into the config."
                )
            if param.default is not param.empty:
                raise StageDefinitionError(
                    f"{where}: '{param.name}' is provided by the runner; remove its default."
                )
            continue
        if param.name in RUNTIME_PARAMETERS:
            raise StageDefinitionError(
                f"{where}: '{param.name}' must be keyword-only (put it after '*'), e.g. "
                f"'def {func.__name__}(..., *, {param.name})'."
            )
        annotation = hints.get(param.name)
        if isinstance(annotation, type) and issubclass(annotation, Config):
            raise StageDefinitionError(
                f"{where}: parameter '{param.name}' is annotated with a config class but is "
                "not the first parameter. The config must come first."
            )
        required = param.default is param.empty
        inputs.append(InputSpec(param.name, required, None if required else param.default))
    return config_type, tuple(inputs), uses_rng, uses_ctx


def _check_outputs(where: str, names: tuple[str, ...]) -> tuple[str, ...]:
    if not names or len(set(names)) != len(names):
        raise StageDefinitionError(f"{where}: outputs must be distinct names, got {names}")
    for out in names:
        if not isinstance(out, str) or not out.isidentifier():
            raise StageDefinitionError(f"{where}: output name {out!r} must be a Python identifier.")
        if out == SINGLE_OUTPUT:
            raise StageDefinitionError(
                f"{where}: '{SINGLE_OUTPUT}' is the name of a single-output stage's output and "
                "cannot be declared; omit outputs= for one output, or name it something else "
                "(see docs/architecture.md, 'outputs')."
            )
    return names


def _freeze_defaults(fn: Callable[..., Any], where: str) -> None:
    """Defaults of optional inputs become immutable: a stage that appended to a default list
    would change what later calls compute under the same key (Python's mutable-default trap)."""
    if fn.__defaults__:
        fn.__defaults__ = tuple(deep_freeze(d, f"{where}: a default") for d in fn.__defaults__)


def _register_value_types(fn: Callable[..., Any]) -> None:
    """The Structs and enums a stage's signature and module name may be decoded from the store
    (see core/value_types.py): a fresh process that replays cached results can read them."""
    for annotation in _resolved_hints(fn).values():
        if not isinstance(annotation, str):
            register_annotation(annotation)
    register_module_types(fn.__module__)


def _check_resources(where: str, resources: Mapping[str, float] | None) -> dict[str, float]:
    resources = dict(resources or {})
    for key, amount in resources.items():
        if key not in _RESOURCE_KEYS:
            raise StageDefinitionError(
                f"{where}: unknown resource '{key}'; use one of {', '.join(_RESOURCE_KEYS)}."
            )
        if not isinstance(amount, int | float) or amount < 0:
            raise StageDefinitionError(f"{where}: resource '{key}' must be a number >= 0.")
    return resources


def stage(
    func: Callable[..., Any] | None = None,
    *,
    version: str | int = "0",
    deps: Iterable[Any] = (),
    outputs: Iterable[str] | None = None,
    pickle: bool = False,
    retries: int = 0,
    resources: Mapping[str, float] | None = None,
    lazy: Iterable[str] = (),
    compress: bool | None = None,
    warn_untracked: bool = True,
) -> Any:
    """Declare a stage.

    ``version`` is part of the fingerprint: bump it when behaviour changes in code the source
    hash cannot see. ``deps`` lists helpers (functions, classes, constants) whose change must
    invalidate results. ``outputs`` names the outputs of a stage that returns a dict (or Struct)
    of several values; without it the whole return value is the single output. ``lazy`` names
    inputs delivered as on-disk arrays instead of loaded ndarrays. ``warn_untracked=False``
    silences the warning about module-level names the stage reads that no key covers.
    """

    def decorate(fn: Callable[..., Any]) -> Stage:
        where = _describe(fn)
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise StageDefinitionError(f"@physflow.stage decorates functions, not {fn!r}")
        if fn.__name__ == "<lambda>":
            raise StageDefinitionError(
                f"{where}: lambdas cannot be stages (no stable name to import them by in "
                "workers). Use 'def'."
            )
        dep_list = tuple(deps)
        config_type, inputs, uses_rng, uses_ctx = _signature_parts(fn)
        _freeze_defaults(fn, where)
        _register_value_types(fn)
        if warn_untracked:
            untracked.warn_untracked(fn, dep_list, where)
        names = None if outputs is None else _check_outputs(where, tuple(outputs))
        lazy_set = frozenset(lazy)
        unknown_lazy = lazy_set - {spec.name for spec in inputs}
        if unknown_lazy:
            raise StageDefinitionError(
                f"{where}: lazy={sorted(unknown_lazy)} are not inputs of the stage."
            )
        if not isinstance(retries, int) or retries < 0:
            raise StageDefinitionError(f"{where}: retries must be an int >= 0.")
        qualified = f"{fn.__module__}:{fn.__qualname__}"
        built = Stage(
            func=fn,
            name=qualified,
            version=str(version),
            config_type=config_type,
            inputs=inputs,
            outputs=names,
            uses_rng=uses_rng,
            uses_ctx=uses_ctx,
            deps=dep_list,
            allow_pickle=pickle,
            retries=retries,
            resources=_check_resources(where, resources),
            lazy_inputs=lazy_set,
            compress=compress,
        )
        built.__doc__ = fn.__doc__
        built.__wrapped__ = fn  # type: ignore[attr-defined]
        return built

    if func is not None:
        return decorate(func)
    return decorate
