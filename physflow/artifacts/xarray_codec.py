"""xarray ``DataArray`` / ``Dataset`` as a zarr v3 group, read back lazily with dask.

Layout: the object directory is a zarr group; each variable (data variables and coordinates) is a
child zarr array with ``dimension_names`` and its attributes, so ``xarray.open_zarr`` opens it
too. ``attributes.physflow`` of the group records the exact names, attrs and kinds in physflow's
tagged encoding, so the round trip restores them with their types.

The digest rule lives in :mod:`physflow.core.optional_rules`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.hashing import digest
from .array_codec import read_array, write_array
from .codec_types import Codec
from .inline import from_tree, to_tree
from .zarr_meta import seal

if TYPE_CHECKING:
    from .store import Store

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
DATAARRAY_VARIABLE = "__xarray_dataarray_variable__"


def _json_attrs(attrs: dict) -> dict:
    """The attrs plain JSON can carry (for other zarr readers; physflow keeps the exact tree)."""
    out = {}
    for k, v in attrs.items():
        if not isinstance(k, str):
            continue
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


def _no_objects(leaf: Any) -> None:
    return None


def _variables(value: Any) -> tuple[str, list[tuple[Any, Any, bool]], dict, Any]:
    import xarray as xr

    if isinstance(value, xr.DataArray):
        name = value.name
        items = [(DATAARRAY_VARIABLE if name is None else name, value.variable, False)]
        items += [(n, c.variable, True) for n, c in value.coords.items()]
        return "DataArray", items, {}, name
    items = [(n, v.variable, False) for n, v in value.data_vars.items()]
    items += [(n, c.variable, True) for n, c in value.coords.items()]
    return "Dataset", items, dict(value.attrs), None


def encode(store: Store, value: Any, opts: Any, store_leaf: Any) -> list:

    d = digest(value)
    if store.has_object(d):
        return ["o", "xarray", d]
    kind, items, attrs, name = _variables(value)

    def write(sink: Any) -> str:
        entries = []
        used: set[str] = set()
        for i, (var_name, var, is_coord) in enumerate(items):
            folder = var_name if isinstance(var_name, str) and _SAFE_NAME.match(var_name) else ""
            if not folder or folder in used or folder == "zarr.json":
                folder = f"__var{i}"
            used.add(folder)
            write_array(
                store,
                sink,
                folder,
                np.asarray(var.values),
                opts.compress,
                attributes=_json_attrs(var.attrs),
                dimension_names=[str(x) for x in var.dims],
            )
            entries.append(
                {
                    "name": to_tree(var_name, _no_objects),
                    "folder": folder,
                    "coord": is_coord,
                    "dims": to_tree(tuple(var.dims), _no_objects),
                    "attrs": to_tree(dict(var.attrs), _no_objects),
                }
            )
        physflow = {
            "codec": "xarray",
            "kind": kind,
            "digest": d,
            "name": to_tree(name, _no_objects),
            "attrs": to_tree(attrs, _no_objects),
            "variables": entries,
        }
        group = {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {**_json_attrs(attrs), "physflow": physflow},
        }
        sink.write("zarr.json", json.dumps(seal(_jsonable(group))).encode())
        return d

    store.write_object(write)
    return ["o", "xarray", d]


def _jsonable(tree: Any) -> Any:
    """Trees may hold bytes (inline arrays); JSON carries them as {"__bytes__": hex}."""
    if isinstance(tree, bytes):
        return {"__bytes__": tree.hex()}
    if isinstance(tree, list | tuple):
        return [_jsonable(x) for x in tree]
    if isinstance(tree, dict):
        return {k: _jsonable(v) for k, v in tree.items()}
    return tree


def _from_jsonable(tree: Any) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"__bytes__"}:
            return bytes.fromhex(tree["__bytes__"])
        return {k: _from_jsonable(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_from_jsonable(x) for x in tree]
    return tree


def _decode_tree(tree: Any) -> Any:
    return from_tree(_from_jsonable(tree), lambda ref: None)


def decode(store: Store, ref: list, lazy: bool = True) -> Any:
    """The stored DataArray/Dataset, with variables backed by verified dask arrays."""
    import xarray as xr

    from .arrays import ArrayReader

    source = store.object_source(ref[2])
    physflow = source.meta()["attributes"]["physflow"]
    data_vars: dict[Any, Any] = {}
    coords: dict[Any, Any] = {}
    for entry in physflow["variables"]:
        reader = ArrayReader(source, entry["folder"])
        data = read_array(reader, lazy=True)
        var = xr.Variable(_decode_tree(entry["dims"]), data, attrs=_decode_tree(entry["attrs"]))
        (coords if entry["coord"] else data_vars)[_decode_tree(entry["name"])] = var
    if physflow["kind"] == "DataArray":
        ((_var_name, var),) = data_vars.items()
        name = _decode_tree(physflow["name"])
        value = xr.DataArray(var.data, coords=coords, dims=var.dims, name=name, attrs=var.attrs)
        value.name = name  # xarray would otherwise name an unnamed array after its dask graph
        return value
    return xr.Dataset(data_vars, coords=coords, attrs=_decode_tree(physflow["attrs"]))


def codecs() -> list[tuple[Codec, tuple[str, ...]]]:
    def matches(value: Any) -> bool:
        import xarray as xr

        return isinstance(value, xr.DataArray | xr.Dataset)

    return [(Codec("xarray", matches, encode, decode), ("xarray",))]
