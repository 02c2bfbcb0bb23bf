"""The ``scan:`` block of a spec: axes must name config fields, collects must name outputs."""

from __future__ import annotations

from typing import Any

import msgspec

from ..core.refs import RefError, resolve_ref
from ..core.suggest import closest
from .graph import Pipeline
from .spec_types import ScanSpec
from .spec_yaml import Path_, _Document, _got, _split_msgspec_error
from .stage import Stage


def parse_scan(
    doc: _Document, raw: Any, pipeline: Pipeline, resolved: dict[str, Stage]
) -> ScanSpec:
    """The ``scan:`` block, checked against the pipeline (axes, collect references)."""
    base = ("scan",)
    if not isinstance(raw, dict):
        raise doc.error(
            f"expected a mapping (grid/zip/points/sample/collect/...), got {_got(raw)}",
            base,
            field="scan",
        )
    allowed = ScanSpec.__struct_fields__
    for key in raw:
        if key not in allowed:
            raise doc.error(
                f"unknown scan key '{key}'; valid keys: {', '.join(allowed)}.",
                (*base, key),
                at="key",
                field=str(key),
                suggestions=closest(key, allowed),
            )
    try:
        spec = msgspec.convert(raw, ScanSpec, strict=False)
    except msgspec.ValidationError as exc:
        detail, sub = _split_msgspec_error(str(exc))
        raise doc.error(
            f"{detail}", (*base, *sub), field=".".join(str(s) for s in sub) or "scan"
        ) from None
    for block in ("grid", "zip"):
        for path in getattr(spec, block):
            _check_param(doc, path, pipeline, (*base, block, path))
    for i, point in enumerate(spec.points):
        for path in point:
            _check_param(doc, path, pipeline, (*base, "points", i, path))
    if spec.sample is not None:
        for path, (low, high) in spec.sample.ranges.items():
            _check_param(doc, path, pipeline, (*base, "sample", "ranges", path))
            if not low < high:
                raise doc.error(
                    f"range [{low}, {high}] must have low < high",
                    (*base, "sample", "ranges", path),
                    field=path,
                )
        if spec.sample.n < 1:
            raise doc.error("n must be >= 1", (*base, "sample", "n"), field="n")
    if spec.zip:
        lengths = {k: len(v) for k, v in spec.zip.items()}
        if len(set(lengths.values())) > 1:
            raise doc.error(
                f"zip axes must have equal lengths, got {lengths}", (*base, "zip"), field="zip"
            )
    for i, ref in enumerate(spec.collect):
        _check_ref(doc, ref, resolved, (*base, "collect", i), "collect")
    if spec.reference is not None:
        _check_ref(doc, spec.reference, resolved, (*base, "reference"), "reference")
    if spec.plot is not None and spec.plot.trials is not None:
        _check_ref(doc, spec.plot.trials, resolved, (*base, "plot", "trials"), "trials")
    return spec


def _check_param(doc: _Document, path: str, pipeline: Pipeline, where: Path_) -> None:
    """A scan axis must be 'seed' or an existing 'node.field[.sub]' config path."""
    if path == "seed":
        return
    node_id, _, rest = path.partition(".")
    node = pipeline.nodes.get(node_id)
    if node is None:
        raise doc.error(
            f"scan axis '{path}': no node '{node_id}'",
            where,
            at="key",
            node=node_id,
            field=path,
            suggestions=closest(node_id, pipeline.nodes),
        )
    if not rest or node.config is None:
        raise doc.error(
            f"scan axis '{path}' must be 'seed' or 'node.field' of a node with a config",
            where,
            at="key",
            node=node_id,
            field=path,
        )
    cls: Any = type(node.config)
    for name in rest.split("."):
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            raise doc.error(
                f"scan axis '{path}': '{name}' is not inside a nested config",
                where,
                at="key",
                node=node_id,
                field=name,
            )
        if name not in cls.__struct_fields__:
            raise doc.error(
                f"scan axis '{path}': {cls.__qualname__} has no field '{name}'",
                where,
                at="key",
                node=node_id,
                field=name,
                suggestions=closest(name, cls.__struct_fields__),
            )
        cls = next(f.type for f in msgspec.structs.fields(cls) if f.name == name)


def _check_ref(
    doc: _Document, ref: Any, resolved: dict[str, Stage], where: Path_, what: str
) -> None:
    outputs_of = {n: stage.output_names for n, stage in resolved.items()}
    try:
        resolve_ref(ref, outputs_of, allow_key=True)
    except RefError as exc:
        raise doc.error(f"{what} {exc}", where, node=exc.node or None, field=what) from None
