"""Collected outputs of a scan -> ``xarray.Dataset`` (small values as data, large arrays lazy).

Variables are named exactly like the collected reference (``"power"``, ``"metrics.ber"``) so
the name in ``collect=[...]`` is the name in the dataset; use ``ds["metrics.ber"]``. Extra
dimensions of array outputs are named ``f"{var}_dim{i}"``. Arrays stored inline in the action
record (<= 16 KiB by default) are read into memory; larger ones become dask arrays whose chunks
(one per point) memory-map the store's objects when computed. Failed points are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts.inline import INLINE_MAX_BYTES
from .axes import ScanError, ScanPoints

if TYPE_CHECKING:
    from ..artifacts.store import Store
    from ..core.records import OutputEntry

_SCALAR_TAGS = frozenset("fibgcs")


@dataclass
class Collected:
    """One dataset variable: the reference and each point's stored entry (None = failed)."""

    name: str
    entries: list[OutputEntry | None]
    #: An entry of a dict output (``"node.output.key"``), or None for the whole output.
    key: str | None = None


def _missing_value(kind: str) -> Any:
    return "" if kind in "SUO" else (complex("nan+nanj") if kind == "c" else np.nan)


def _result_dtype(dtype: np.dtype, any_missing: bool) -> np.dtype:
    if any_missing and dtype.kind in "biu":
        return np.dtype(np.float64)
    return dtype


def _scalar_variable(var: Collected, store: Store) -> np.ndarray:
    values: list[Any] = []
    missing = []
    for i, entry in enumerate(var.entries):
        if entry is None:
            values.append(None)
            missing.append(i)
            continue
        tree = entry.tree
        tag = tree[0]
        if tag in ("f", "i", "b", "s"):
            values.append(tree[1])
        else:
            values.append(store.get_value(entry))
    present = [v for v in values if v is not None]
    if not present:
        return np.full(len(values), np.nan)
    if isinstance(present[0], str):
        return np.array([v if v is not None else "" for v in values], dtype=object)
    probe = np.asarray(present)
    dtype = _result_dtype(probe.dtype, bool(missing))
    fill = _missing_value(dtype.kind)
    return np.array([fill if v is None else v for v in values], dtype=dtype)


def _array_shape(var: Collected) -> tuple[tuple[int, ...], np.dtype]:
    shapes = {}
    for i, entry in enumerate(var.entries):
        if entry is not None:
            shapes.setdefault(tuple(entry.shape or ()), i)
    if len(shapes) > 1:
        detail = ", ".join(f"{s} (point {i})" for s, i in list(shapes.items())[:4])
        raise ScanError(
            f"collect '{var.name}': the arrays have different shapes across points ({detail}); "
            "a dataset variable needs one shape. Collect a reduced output (e.g. a metric) or "
            "keep the shape fixed across the scan."
        )
    first = next(e for e in var.entries if e is not None)
    return tuple(first.shape or ()), np.dtype(first.dtype)


def _eager_array(
    var: Collected,
    store: Store,
    scan_shape: tuple[int, ...],
    shape: tuple[int, ...],
    dtype: np.dtype,
) -> np.ndarray:
    missing = any(e is None for e in var.entries)
    dtype = _result_dtype(dtype, missing)
    out = np.empty((len(var.entries), *shape), dtype=dtype)
    for i, entry in enumerate(var.entries):
        if entry is None:
            out[i] = _missing_value(dtype.kind)
        else:
            out[i] = store.get_value(entry)
    return out.reshape(*scan_shape, *shape)


def _load_block(store: Store, entry: OutputEntry, lead: int, dtype: np.dtype) -> np.ndarray:
    value = np.asarray(store.get_value(entry), dtype=dtype)
    return value.reshape((1,) * lead + value.shape)


def _missing_block(block_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return np.full(block_shape, _missing_value(dtype.kind), dtype=dtype)


def _lazy_array(
    var: Collected,
    store: Store,
    scan_shape: tuple[int, ...],
    shape: tuple[int, ...],
    dtype: np.dtype,
) -> Any:
    import dask.array as da
    from dask.base import tokenize

    missing = any(e is None for e in var.entries)
    dtype = _result_dtype(dtype, missing)
    name = "physflow-scan-" + tokenize(
        var.name, [e.digest if e else None for e in var.entries], scan_shape, str(dtype)
    )
    lead = len(scan_shape)
    tail = (0,) * len(shape)
    block = (1,) * lead + shape
    graph: dict[Any, Any] = {}
    for i, entry in enumerate(var.entries):
        key = (name, *np.unravel_index(i, scan_shape), *tail)
        key = tuple(int(k) if not isinstance(k, str) else k for k in key)
        if entry is None:
            graph[key] = (_missing_block, block, dtype)
        else:
            graph[key] = (_load_block, store, entry, lead, dtype)
    chunks = tuple((1,) * n for n in scan_shape) + tuple((n,) for n in shape)
    return da.Array(graph, name, chunks, dtype=dtype)


def _keyed_variable(var: Collected, store: Store) -> np.ndarray:
    """One entry of a dict output at every point (e.g. ``metrics.ber`` of a phys-pipeline
    stage's ``metrics`` dict): scalars or equally shaped arrays; failed points are NaN."""
    values: list[Any] = []
    for entry in var.entries:
        if entry is None:
            values.append(None)
            continue
        value = store.get_value(entry)
        if not isinstance(value, dict) or var.key not in value:
            keys = ", ".join(map(str, value)) if isinstance(value, dict) else "none: not a dict"
            raise ScanError(
                f"collect '{var.name}': the output has no entry '{var.key}' (entries: {keys})"
            )
        values.append(np.asarray(value[var.key]))
    present = [v for v in values if v is not None]
    if not present:
        return np.full(len(values), np.nan)
    if len({v.shape for v in present}) > 1:
        raise ScanError(f"collect '{var.name}': the entry has different shapes across points")
    dtype = _result_dtype(np.result_type(*present), len(present) < len(values))
    out = np.empty((len(values), *present[0].shape), dtype=dtype)
    for i, v in enumerate(values):
        out[i] = _missing_value(dtype.kind) if v is None else v
    return out


def _coord_values(values: list[Any]) -> np.ndarray:
    if all(isinstance(v, str) for v in values):
        # variable-length strings: zarr v3 has no stable fixed-width unicode type
        return np.array(values, dtype=object)
    if all(isinstance(v, bool | int | float | np.generic) for v in values):
        return np.asarray(values)
    return np.array([repr(v) for v in values], dtype=object)


def build_dataset(
    points: ScanPoints,
    collected: list[Collected],
    store: Store,
    attrs: dict[str, Any],
    lazy_bytes: int = INLINE_MAX_BYTES,
) -> Any:
    """Assemble the dataset (see the module docstring for naming and laziness)."""
    import xarray as xr

    scan_shape = points.shape
    dims = list(points.dims)
    data_vars: dict[str, Any] = {}
    for var in collected:
        if var.key is not None:
            data = _keyed_variable(var, store)
            extra = [f"{var.name}_dim{i}" for i in range(data.ndim - 1)]
            data_vars[var.name] = (dims + extra, data.reshape(*scan_shape, *data.shape[1:]))
            continue
        first = next((e for e in var.entries if e is not None), None)
        if first is None:
            data_vars[var.name] = (dims, np.full(scan_shape, np.nan))
            continue
        tag = first.tree[0] if isinstance(first.tree, list) else None
        if tag in _SCALAR_TAGS:
            data_vars[var.name] = (dims, _scalar_variable(var, store).reshape(scan_shape))
            continue
        if first.dtype is None or first.shape is None:
            raise ScanError(
                f"collect '{var.name}': its value is a {first.type_name}, which cannot be a "
                "dataset variable. Collect scalars or numpy arrays (name one output of a "
                "multi-output stage as 'node.output')."
            )
        shape, dtype = _array_shape(var)
        extra = [f"{var.name}_dim{i}" for i in range(len(shape))]
        large = max((e.nbytes for e in var.entries if e is not None), default=0) > lazy_bytes
        build = _lazy_array if large else _eager_array
        data_vars[var.name] = (dims + extra, build(var, store, scan_shape, shape, dtype))
    coords = {name: (dim, _coord_values(values)) for name, (dim, values) in points.coords.items()}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
