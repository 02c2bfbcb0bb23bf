"""Applying ``{"node.field": value}`` overrides to configs (CLI --set, scans, harness)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..core.suggest import did_you_mean
from .errors import PipelineError

if TYPE_CHECKING:
    from .graph import Pipeline


def split_path(path: str) -> tuple[str, list[str]]:
    node, _, rest = path.partition(".")
    if not rest:
        raise PipelineError(
            f"'{path}' is not a parameter path; write 'node.field' (nested: 'node.a.b')."
        )
    return node, rest.split(".")


@functools.lru_cache(maxsize=1024)
def field_type_of(cls: type, name: str) -> Any:
    """The declared type of a config field (cached: msgspec's lookup costs ~60 us, and scans
    set fields once per distinct value)."""
    return next(f.type for f in msgspec.structs.fields(cls) if f.name == name)


def set_nested(config: msgspec.Struct, fields: list[str], value: Any, path: str) -> msgspec.Struct:
    cls = type(config)
    name = fields[0]
    if name not in cls.__struct_fields__:
        raise PipelineError(
            f"'{path}': {cls.__qualname__} has no field '{name}'."
            f"{did_you_mean(name, cls.__struct_fields__)} "
            f"Fields: {', '.join(cls.__struct_fields__)}."
        )
    if len(fields) > 1:
        inner = getattr(config, name)
        if not isinstance(inner, msgspec.Struct):
            raise PipelineError(f"'{path}': field '{name}' is not a nested config.")
        value = set_nested(inner, fields[1:], value, path)
    field_type = field_type_of(cls, name)
    try:
        value = msgspec.convert(value, field_type, strict=False, dec_hook=passthrough_hook)
        return msgspec.structs.replace(config, **{name: value})
    except (msgspec.ValidationError, TypeError, ValueError) as exc:
        raise PipelineError(f"'{path}' = {value!r}: {exc}") from None


def passthrough_hook(expected: type, value: Any) -> Any:
    """Lets values of types msgspec does not know (numpy arrays) through when already right."""
    if isinstance(expected, type) and isinstance(value, expected):
        return value
    if isinstance(expected, type) and expected.__module__ == "numpy":
        import numpy as np

        if isinstance(value, str | bytes):
            raise ValueError(f"expected an array (a list such as [0.5, 0.25]), got {value!r}")
        array = np.asarray(value, dtype=None)
        if array.dtype.kind == "O":
            raise ValueError("expected a regular array (lists of equal lengths, numbers)")
        return array
    raise NotImplementedError(f"cannot convert {type(value).__qualname__} to {expected}")


def apply_overrides(pipeline: Pipeline, values: Mapping[str, Any]) -> None:
    """Replace config fields in place; every value is validated through its config class."""
    for path, value in values.items():
        node_id, fields = split_path(path)
        node = pipeline.nodes.get(node_id)
        if node is None:
            raise PipelineError(
                f"'{path}': no node '{node_id}' in pipeline '{pipeline.name}'."
                f"{did_you_mean(node_id, pipeline.nodes)}"
            )
        if node.config is None:
            raise PipelineError(f"'{path}': node '{node_id}' has no config to override.")
        node.config = set_nested(node.config, fields, value, path)
