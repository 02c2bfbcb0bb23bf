"""``Dataset.to_xarray()``: the samples as a lazy ``xarray.Dataset`` (dask, verified reads).

Fixed-shape fields become variables ``(sample, <field>_dim1, ...)``. A ragged field becomes
``<field>`` over its own axis ``<field>_values`` (all samples' values, flat) plus per-sample
``<field>_start`` / ``<field>_stop`` (and ``<field>_shape`` for samples of 2+ dimensions):
sample ``i`` is ``values[start[i]:stop[i]].reshape(shape[i])``. Drawn parameters are
per-sample variables named by their path; ``split`` names each sample's split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _engine, sampling
from .encoding import param_column


def to_xarray(ds: Any) -> Any:
    import dask.array as da
    import xarray as xr

    card = ds.card
    ids = np.arange(card.samples)
    data: dict[str, Any] = {}
    for name, info in card.fields.items():
        attrs = {"ref": info.ref} | ({"units": info.units} if info.units else {})
        if not info.ragged:
            arrays = [_engine.lazy_array(ds.store, s.arrays[name]) for s in card.shards]
            dims = ["sample", *(f"{name}_dim{j + 1}" for j in range(len(info.shape)))]
            data[name] = xr.Variable(dims, da.concatenate(arrays, axis=0), attrs)
            continue
        data.update(_ragged(ds, name, attrs))
    for path in card.params:
        dist = ds.vary[path]
        column = np.concatenate(
            [
                param_column(
                    dist,
                    _load(ds, s.arrays.get(f"params/{path}")),
                    np.arange(s.stop - s.start),
                )
                for s in card.shards
            ]
        )
        data[path] = xr.Variable(["sample"], column)
    if card.split:
        names = np.array(sampling.split_names(card.split))
        data["split"] = xr.Variable(
            ["sample"], names[sampling.assign_splits(card.seed, card.split, ids)]
        )
    out = xr.Dataset(
        data,
        coords={"sample": ids},
        attrs={"dataset": card.name, "identity": card.identity, "seed": card.seed},
    )
    return out if ds.indices is None else out.isel(sample=ds.indices)


def _load(ds: Any, d: str | None) -> Any:
    return None if d is None else _engine.load_array(ds.store, d)


def _ragged(ds: Any, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    import dask.array as da
    import xarray as xr

    values, starts, stops, shapes = [], [], [], []
    base = 0
    for s in ds.card.shards:
        n = s.stop - s.start
        lazy = _engine.lazy_array(ds.store, s.arrays[name])
        if f"{name}/offsets" in s.arrays:
            offsets = _engine.load_array(ds.store, s.arrays[f"{name}/offsets"])
            if f"{name}/shapes" in s.arrays:
                shape = _engine.load_array(ds.store, s.arrays[f"{name}/shapes"])
            else:
                shape = np.diff(offsets)[:, None]
        else:  # this shard happened to hold equal shapes: stored fixed
            per = int(np.prod(lazy.shape[1:]))
            offsets = np.arange(n + 1, dtype=np.int64) * per
            shape = np.tile(np.asarray(lazy.shape[1:], dtype=np.int64), (n, 1))
            lazy = lazy.reshape(-1)
        values.append(lazy)
        starts.append(base + offsets[:-1])
        stops.append(base + offsets[1:])
        shapes.append(shape)
        base += int(offsets[-1])
    out = {
        name: xr.Variable([f"{name}_values"], da.concatenate(values), attrs),
        f"{name}_start": xr.Variable(["sample"], np.concatenate(starts)),
        f"{name}_stop": xr.Variable(["sample"], np.concatenate(stops)),
    }
    if len(ds.card.fields[name].shape) > 1:
        out[f"{name}_shape"] = xr.Variable(["sample", f"{name}_ndim"], np.concatenate(shapes))
    return out
