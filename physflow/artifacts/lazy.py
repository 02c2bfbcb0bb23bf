"""Lazy inputs: stored arrays as dask arrays whose chunks are read (and verified) on demand.

A stage declared ``@pf.stage(lazy=["field"])`` receives ``field`` as a ``dask.array.Array``
backed by the stored chunks, so it can process an array larger than memory chunk by chunk
(``field.blocks[i].compute()``, ``field[a:b].compute()``, or any dask reduction). Every chunk
read is checked against its digest. :func:`open_zarr` gives the plain ``zarr.Array`` instead
(local stores; zarr itself does not verify digests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.records import OutputEntry

if TYPE_CHECKING:
    from .store import Store


def open_lazy(store: Store, entry: OutputEntry) -> Any:
    """The value of ``entry`` without loading it: arrays as dask arrays, xarray values backed by
    dask; small inline arrays are wrapped in dask too, other values are returned as is."""
    tree = entry.tree
    if isinstance(tree, list) and tree and tree[0] == "o":
        codec = tree[1]
        if codec == "array":
            from .codecs import read_array

            return read_array(store.array_reader(tree[2]), lazy=True)
        if codec == "xarray":
            from .xarray_codec import decode

            return decode(store, tree)
    value = store.get_value(entry)
    if isinstance(value, np.ndarray):
        import dask.array as da

        return da.from_array(value, chunks=value.shape if value.ndim else ())
    return value


def open_zarr(store: Store, entry: OutputEntry) -> Any:
    """The stored array as a read-only ``zarr.Array`` (no digest verification)."""
    import zarr

    tree = entry.tree
    if not (isinstance(tree, list) and tree and tree[0] == "o" and tree[1] == "array"):
        raise TypeError(f"value {entry.digest} is not stored as a zarr array object")
    path = store.object_path(tree[2])
    if store.is_local:
        return zarr.open_array(str(path), mode="r")
    return zarr.open_array(f"{store.location}/{store.object_rel(tree[2])}", mode="r")
