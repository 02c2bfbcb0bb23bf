"""The ``dataset:`` section of a spec (and the same arguments of ``pf.ml.generate``).

```yaml
dataset:
  samples: 10000
  vary:                                   # drawn per sample from the sample's own seed
    channel.ebn0_db: {uniform: [0.0, 12.0]}
    tx.modulation: {choice: [qpsk, 16qam]}
  outputs: {x: rx, y: tx.bits}            # node, node.output, node.output.key
  shard_size: 256
  split: {train: 0.8, val: 0.1, test: 0.1}
```

Every problem is a ``pf.SpecError`` naming the file, line and key and listing what is valid.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable
from typing import Any

import msgspec

import physflow as pf

from . import _engine
from . import distributions as dists
from .distributions import Distribution

KEYS = ("samples", "vary", "outputs", "shard_size", "split", "seed", "name", "compress")
#: Keys of ``ds[i]`` that are not outputs.
RESERVED = ("index",)
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
DEFAULT_SHARD_SIZE = 256

ErrorFn = Callable[..., Exception]


class OutputField(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One field of a sample: a node output (``node``, ``node.output``, ``node.output.key``)."""

    ref: str
    units: str | None = None


class DatasetSpec(msgspec.Struct, frozen=True):
    """What defines a dataset besides its pipeline (see docs/ml.md)."""

    samples: int | None = None
    vary: dict[str, Distribution] = {}
    outputs: dict[str, OutputField] = {}
    shard_size: int = DEFAULT_SHARD_SIZE
    split: dict[str, float] | None = None
    seed: int | None = None
    name: str | None = None
    compress: bool = False


def python_errors(where: str = "pf.ml.generate()") -> ErrorFn:
    """Errors for arguments given in Python: no line, the argument path as the field."""

    def err(message: str, path: tuple, at: str = "value", **info: Any) -> Exception:
        info.setdefault("field", ".".join(str(p) for p in path[1:]) or None)
        return pf.SpecError(message, file=where, **info)

    return err


# -- config fields --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def field_type(cls: type, name: str) -> Any:
    return next(f.type for f in msgspec.structs.fields(cls) if f.name == name)


def _passthrough(expected: type, value: Any) -> Any:
    if isinstance(expected, type) and isinstance(value, expected):
        return value
    if isinstance(expected, type) and expected.__module__ == "numpy":
        import numpy as np

        return np.asarray(value)
    raise NotImplementedError(f"cannot convert {type(value).__qualname__} to {expected}")


def set_field(config: Any, fields: tuple[str, ...], value: Any) -> Any:
    """``config`` with ``a.b.c = value``, converted and validated by the config class (the
    same conversion as ``Pipeline.with_values``)."""
    name = fields[0]
    if len(fields) > 1:
        value = set_field(getattr(config, name), fields[1:], value)
    converted = msgspec.convert(
        value, field_type(type(config), name), strict=False, dec_hook=_passthrough
    )
    return msgspec.structs.replace(config, **{name: converted})


# -- parsing --------------------------------------------------------------------------------------


def parse_section(raw: Any, pipeline: Any, err: ErrorFn, base: tuple = ("dataset",)) -> DatasetSpec:
    """Check a ``dataset:`` mapping against ``pipeline``; errors point at ``base + path``."""
    if not isinstance(raw, dict):
        raise err(f"expected a mapping with keys {', '.join(KEYS)}, got {raw!r}", base)
    for key in raw:
        if key not in KEYS:
            raise err(
                f"unknown dataset key '{key}'; valid keys: {', '.join(KEYS)}.",
                (*base, key),
                at="key",
                field=str(key),
                suggestions=_engine.closest(key, KEYS),
            )
    values: dict[str, Any] = {}
    for key in ("samples", "shard_size"):
        if key in raw:
            values[key] = _int(raw[key], (*base, key), err, minimum=1)
    if "seed" in raw:
        values["seed"] = _int(raw["seed"], (*base, "seed"), err, minimum=0)
    if "name" in raw:
        values["name"] = check_name(raw["name"], (*base, "name"), err)
    if "compress" in raw:
        if not isinstance(raw["compress"], bool):
            raise err(f"expected true or false, got {raw['compress']!r}", (*base, "compress"))
        values["compress"] = raw["compress"]
    if "vary" in raw:
        values["vary"] = parse_vary(raw["vary"], pipeline, err, (*base, "vary"))
    if "outputs" in raw:
        values["outputs"] = parse_outputs(raw["outputs"], pipeline, err, (*base, "outputs"))
    if "split" in raw:
        values["split"] = parse_split(raw["split"], err, (*base, "split"))
    return DatasetSpec(**values)


def _int(value: Any, path: tuple, err: ErrorFn, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise err(f"expected an int >= {minimum}, got {value!r}", path, expected="int", got=value)
    return value


def check_name(value: Any, path: tuple, err: ErrorFn) -> str:
    if not isinstance(value, str) or not NAME.match(value) or value in (".", ".."):
        raise err(
            f"dataset name {value!r}: use letters, digits, '_', '-' or '.' (it names a file)",
            path,
        )
    return value


def parse_vary(raw: Any, pipeline: Any, err: ErrorFn, base: tuple) -> dict[str, Distribution]:
    if not isinstance(raw, dict):
        raise err(f"expected a mapping of node.field -> distribution, got {raw!r}", base)
    out: dict[str, Distribution] = {}
    for path, spec in raw.items():
        where = (*base, path)
        config, fields = _check_param(str(path), pipeline, err, where)
        dist = parse_distribution(spec, err, where)
        for probe in dist.probes():
            try:
                set_field(config, fields, probe)
            except (msgspec.ValidationError, TypeError, ValueError) as exc:
                kind = next(iter(dists.to_builtins(dist)))
                hint = " (use randint for int fields)" if kind in ("uniform", "normal") else ""
                raise err(
                    f"vary '{path}': {kind} gives {probe!r}, which {type(config).__qualname__}"
                    f".{'.'.join(fields)} rejects: {exc}{hint}",
                    where,
                    field=str(path),
                ) from None
        out[str(path)] = dist
    return out


def parse_distribution(spec: Any, err: ErrorFn, where: tuple) -> Distribution:
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, list):
        raise err(
            f"a list is ambiguous here: write {{choice: {spec!r}}} to draw one of the values, "
            f"or {{fixed: {spec!r}}} for a list-valued field",
            where,
            field=str(where[-1]),
        )
    if not isinstance(spec, dict):
        return dists.Fixed(spec)
    if len(spec) != 1:
        raise err(
            f"a distribution is one of {', '.join(dists.DISTRIBUTIONS)} with its arguments, "
            f"e.g. {{uniform: [0.0, 1.0]}}; got {spec!r}",
            where,
            field=str(where[-1]),
        )
    ((kind, arg),) = spec.items()
    if kind not in dists.DISTRIBUTIONS:
        raise err(
            f"unknown distribution '{kind}'; valid: {', '.join(dists.DISTRIBUTIONS)}.",
            (*where, kind),
            at="key",
            field=str(where[-1]),
            suggestions=_engine.closest(kind, dists.DISTRIBUTIONS),
        )
    try:
        return dists.parse(kind, arg)
    except ValueError as exc:
        raise err(str(exc), (*where, kind), field=str(where[-1])) from None


def _check_param(path: str, pipeline: Any, err: ErrorFn, where: tuple) -> tuple[Any, tuple]:
    """(node config, field names) of an existing ``node.field[.sub]`` config path."""
    node_id, _, rest = path.partition(".")
    node = pipeline.nodes.get(node_id)
    if node is None:
        raise err(
            f"vary '{path}': no node '{node_id}'; nodes: {', '.join(pipeline.nodes)}.",
            where,
            at="key",
            node=node_id,
            suggestions=_engine.closest(node_id, pipeline.nodes),
        )
    if not rest or node.config is None:
        raise err(
            f"vary '{path}' must be 'node.field' of a node with a config "
            "(each sample's random seed is derived from the dataset seed, not varied)",
            where,
            at="key",
            node=node_id,
        )
    cls: Any = type(node.config)
    fields = tuple(rest.split("."))
    for name in fields:
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            raise err(f"vary '{path}': '{name}' is not inside a nested config", where, at="key")
        if name not in cls.__struct_fields__:
            raise err(
                f"vary '{path}': {cls.__qualname__} has no field '{name}'; fields: "
                f"{', '.join(cls.__struct_fields__)}.",
                where,
                at="key",
                node=node_id,
                field=name,
                suggestions=_engine.closest(name, cls.__struct_fields__),
            )
        cls = field_type(cls, name)
    return node.config, fields


def parse_outputs(raw: Any, pipeline: Any, err: ErrorFn, base: tuple) -> dict[str, OutputField]:
    if not isinstance(raw, dict) or not raw:
        raise err(
            f"expected a non-empty mapping of field name -> 'node[.output][.key]', got {raw!r}",
            base,
        )
    out: dict[str, OutputField] = {}
    for name, spec in raw.items():
        where = (*base, name)
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED:
            raise err(
                f"field name {name!r} must be a Python identifier other than {', '.join(RESERVED)}",
                where,
                at="key",
            )
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in ("ref", "units")]
            if unknown or "ref" not in spec:
                raise err(
                    f"field '{name}': expected {{ref: node.output, units: ...}}, got {spec!r}",
                    where,
                    field=name,
                )
            field = OutputField(str(spec["ref"]), spec.get("units"))
        elif isinstance(spec, OutputField):
            field = spec
        else:
            field = OutputField(spec if isinstance(spec, str) else repr(spec))
            if not isinstance(spec, str):
                raise err(f"field '{name}': expected 'node.output', got {spec!r}", where)
        resolve_ref(field.ref, pipeline, err, where)
        out[name] = field
    return out


def resolve_ref(ref: str, pipeline: Any, err: ErrorFn, where: tuple) -> tuple[str, str, tuple]:
    """``node[.output][.key...]`` -> (node id, output name, keys into the value)."""
    node_id, *rest = ref.split(".")
    node = pipeline.nodes.get(node_id)
    if node is None:
        raise err(
            f"output '{ref}': no node '{node_id}'; nodes: {', '.join(pipeline.nodes)}.",
            where,
            node=node_id,
            suggestions=_engine.closest(node_id, pipeline.nodes),
        )
    declared = node.stage.outputs
    if declared is None:
        return node_id, "value", tuple(rest)
    if not rest or rest[0] not in declared:
        wrong = rest[0] if rest else ""
        raise err(
            f"output '{ref}': node '{node_id}' has outputs {', '.join(declared)}; name one "
            f"(e.g. '{node_id}.{declared[0]}')",
            where,
            node=node_id,
            suggestions=[f"{node_id}.{s}" for s in _engine.closest(wrong, declared)]
            if wrong
            else None,
        )
    return node_id, rest[0], tuple(rest[1:])


def parse_split(raw: Any, err: ErrorFn, base: tuple) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise err(f"expected a mapping of split name -> fraction, got {raw!r}", base)
    out: dict[str, float] = {}
    for name, frac in raw.items():
        ok = isinstance(frac, int | float) and not isinstance(frac, bool)
        if not ok or not 0 < float(frac) <= 1 or not math.isfinite(float(frac)):
            raise err(f"split '{name}': expected a fraction in (0, 1], got {frac!r}", (*base, name))
        if not isinstance(name, str) or not name.isidentifier():
            raise err(f"split name {name!r} must be an identifier", (*base, name), at="key")
        out[name] = float(frac)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise err(f"split fractions must add up to 1, got {total:.6g} ({out})", base)
    return out


# -- spec files ---------------------------------------------------------------------------------


def load_dataset_spec(
    path: str | os.PathLike[str], overrides: dict[str, Any] | None = None
) -> tuple[Any, DatasetSpec]:
    """The pipeline of a spec file and its ``dataset:`` section (empty when absent)."""
    pipeline, spec, _missing = load_with_errors(path, overrides)
    return pipeline, spec


def load_with_errors(path: Any, overrides: dict[str, Any] | None) -> tuple[Any, DatasetSpec, Any]:
    """(pipeline, dataset section, error for a missing key pointing at the section)."""
    loaded = _engine.load_spec_full(path, overrides)
    raw = loaded.data.get("dataset")
    if raw is None:
        return loaded.pipeline, DatasetSpec(), missing_error(loaded.file, None)
    spec = parse_section(raw, loaded.pipeline, loaded.doc.error)
    return loaded.pipeline, spec, missing_error(loaded.file, loaded.doc)


def missing_error(file: str, doc: Any) -> Any:
    def err(message: str, field: str) -> Exception:
        if doc is None:
            return pf.SpecError(f"{message} (the spec has no dataset: section)", file=file)
        return doc.error(message, ("dataset",), at="key", field=field)

    return err
