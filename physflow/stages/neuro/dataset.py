"""Decoding results as a lazy xarray Dataset, and streamed NetCDF / zarr writes.

``open_dataset(manifest)`` builds a Dataset (dims ``time``, ``position``) whose (T, S) variables
are dask arrays over the stored chunks (``pf.load_manifest(path).open(ref, lazy=True)``), so
opening costs nothing whatever T is. A uint16-quantised posterior is decoded lazily
(``q / 65535``) and carries the CF packing encoding, so NetCDF/zarr files keep the 2-byte
integers and every reader decodes them. ``save_dataset(ds, path)`` writes ``.nc`` (h5netcdf,
HDF5-chunked, gzip + shuffle) or ``.zarr`` (blosc zstd + bitshuffle) chunk by chunk with dask's
synchronous scheduler: one chunk is in memory at a time.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .posterior import UINT16_SCALE, decode_posterior

#: Variables of a decoding run: (dataset name, manifest reference, dims).
VARIABLES = (
    ("acausal_posterior", "{smoother}", ("time", "position")),
    ("causal_posterior", "{filter}.causal", ("time", "position")),
    ("log_likelihood", "{likelihood}", ("time", "position")),
    ("true_position", "{simulate}.position", ("time",)),
    ("map_position", "{summary}.map_position", ("time",)),
    ("entropy", "{summary}.entropy", ("time",)),
    ("error", "{summary}.error", ("time",)),
)
UNITS = {"true_position": "cm", "map_position": "cm", "entropy": "nats", "error": "cm"}


def _variable(name: str, data: Any, dims: tuple[str, ...]) -> Any:
    import xarray as xr

    stored = np.dtype(data.dtype)
    var = xr.Variable(dims, decode_posterior(data) if "posterior" in name else data)
    if "posterior" in name and stored == np.uint16:
        var.encoding = {"dtype": "uint16", "scale_factor": UINT16_SCALE, "_FillValue": None}
        var.attrs["quantisation"] = "uint16: p = q / 65535, |error| <= 0.5 / 65535"
    elif stored == np.float16:
        var.encoding = {"dtype": "float16"}  # NetCDF writes float32 (it has no 2-byte float)
    if name in UNITS:
        var.attrs["units"] = UNITS[name]
    var.attrs["stored_dtype"] = stored.name
    return var


def open_dataset(
    manifest: Any,
    *,
    nodes: dict[str, str] | None = None,
    include_likelihood: bool = False,
) -> Any:
    """The run's results as a lazy ``xarray.Dataset``.

    ``manifest`` is a manifest path or a ``pf.load_manifest`` result; ``nodes`` renames the node
    ids if the spec used others (keys: simulate, encode, likelihood, filter, smoother, summary).
    Outputs absent from the run (``persist_causal: false``, no summary node) are left out."""
    import xarray as xr

    import physflow as pf

    m = manifest if hasattr(manifest, "open") else pf.load_manifest(manifest)
    ids = {k: k for k in ("simulate", "encode", "likelihood", "filter", "smoother", "summary")}
    ids.update(nodes or {})
    encoding = m.open(ids["encode"])
    data_vars = {}
    for name, ref, dims in VARIABLES:
        if name == "log_likelihood" and not include_likelihood:
            continue
        ref = ref.format(**ids)
        node, _, output = ref.partition(".")
        if node not in m.nodes or (output and output not in m.outputs(node)):
            continue
        data = m.open(ref, lazy=True)
        if data is None:  # e.g. filter.causal with persist_causal: false
            continue
        data_vars[name] = _variable(name, data, dims)
    n_time = next(v.shape[0] for v in data_vars.values())
    centers = 0.5 * (encoding.edges_cm[:-1] + encoding.edges_cm[1:])
    coords = {
        "time": ("time", np.arange(n_time) * encoding.dt_s, {"units": "s"}),
        "position": ("position", centers, {"units": "cm"}),
    }
    attrs = {"manifest": str(m.path), "run_id": str(m.run_id), "dt_s": float(encoding.dt_s)}
    f = ids["filter"]
    if f in m.nodes and "log_marginal" in m.outputs(f):
        attrs["log_marginal_likelihood"] = float(m.open(f"{f}.log_marginal"))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _encodings(ds: Any, kind: str, hdf5_chunk_bytes: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        enc = dict(var.encoding)
        rows = var.shape[0]
        if var.chunks is not None:
            rows = var.chunks[0][0]
        if kind == "netcdf":
            if np.dtype(enc.get("dtype", var.dtype)) == np.float16:  # netCDF: no 2-byte float
                enc["dtype"] = "float32"
            row_bytes = int(np.prod(var.shape[1:], dtype=np.int64)) * var.dtype.itemsize
            hrows = max(1, min(rows, hdf5_chunk_bytes // max(row_bytes, 1)))
            enc.update(zlib=True, complevel=4, shuffle=True, chunksizes=(hrows, *var.shape[1:]))
        else:
            from zarr.codecs import BloscCodec

            itemsize = np.dtype(enc.get("dtype", var.dtype)).itemsize
            blosc = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle", typesize=itemsize)
            enc.update(compressors=[blosc], chunks=(rows, *var.shape[1:]))
        out[name] = enc
    return out


def save_dataset(ds: Any, path: str | Path, *, hdf5_chunk_bytes: int = 1 << 20) -> Path:
    """Write ``ds`` to ``path`` (``.nc``: NetCDF-4 via h5netcdf; ``.zarr``: zarr v3), streaming.

    Chunks are computed and written one at a time (dask's synchronous scheduler), so peak memory
    is about one dask chunk of the largest variable, never the whole posterior."""
    import dask

    path = Path(path)
    kind = {".nc": "netcdf", ".zarr": "zarr"}.get(path.suffix)
    if kind is None:
        raise ValueError(f"save_dataset: {path} must end in .nc (NetCDF-4) or .zarr")
    encoding = _encodings(ds, kind, hdf5_chunk_bytes)
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        # packed posteriors have no NaN to reserve a _FillValue for
        warnings.filterwarnings("ignore", message=".*without any _FillValue.*")
        if kind == "netcdf":
            ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)
        else:
            ds.to_zarr(path, mode="w", encoding=encoding, zarr_format=3, consolidated=False)
    return path
