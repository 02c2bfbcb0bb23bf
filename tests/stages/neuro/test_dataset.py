"""Results as a lazy xarray Dataset from the manifest; streamed NetCDF and zarr writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import physflow as pf

from .helpers import run, small_pipeline

xr = pytest.importorskip("xarray", reason="xarray is not installed (pip install 'physflow[neuro]')")
da = pytest.importorskip("dask.array")
pytest.importorskip("h5netcdf", reason="h5netcdf is not installed (pip install 'physflow[neuro]')")


def test_manifest_opens_as_a_lazy_dataset(store):
    from physflow.stages.neuro.dataset import open_dataset

    res = run(small_pipeline(dtype="float32"), store)
    m = pf.load_manifest(res.manifest_path)
    assert isinstance(m.open("smoother", lazy=True), da.Array)
    ds = open_dataset(res.manifest_path, include_likelihood=True)
    assert ds.acausal_posterior.dims == ("time", "position")
    assert ds.sizes == {"time": 6000, "position": 40}
    for name in ("acausal_posterior", "causal_posterior", "log_likelihood", "entropy"):
        assert isinstance(ds[name].data, da.Array), name
    assert ds.acausal_posterior.data.chunks[0][0] == 1000
    np.testing.assert_array_equal(ds.acausal_posterior.values, res["smoother"])
    np.testing.assert_array_equal(ds.true_position.values, res["simulate.position"])
    enc = res["encode"]
    np.testing.assert_allclose(ds.position.values, 0.5 * (enc.edges_cm[1:] + enc.edges_cm[:-1]))
    np.testing.assert_allclose(ds.time.values, np.arange(6000) * 0.002)
    assert ds.attrs["log_marginal_likelihood"] == res["filter.log_marginal"]
    lean = run(small_pipeline(dtype="float32", persist_causal=False), store)
    assert "causal_posterior" not in open_dataset(lean.manifest_path)


@pytest.mark.parametrize("dtype", ["float32", "uint16"])
def test_netcdf_and_zarr_round_trip_compressed(store, tmp_path, dtype):
    from physflow.stages.neuro.dataset import open_dataset, save_dataset

    res = run(small_pipeline(dtype=dtype), store)
    ds = open_dataset(res.manifest_path)
    raw = ds.acausal_posterior.size * np.dtype(dtype).itemsize
    nc = save_dataset(ds, tmp_path / "decoded.nc")
    zr = save_dataset(ds, tmp_path / "decoded.zarr")
    with xr.open_dataset(nc, engine="h5netcdf", mask_and_scale=False) as packed:
        stored = packed.acausal_posterior
        assert stored.dtype == np.dtype(dtype)  # uint16 stays 2 bytes in the file
        np.testing.assert_array_equal(stored.values, np.asarray(res["smoother"]))
        assert stored.encoding["zlib"] and stored.encoding["chunksizes"][1] == 40
    for path, engine in ((nc, "h5netcdf"), (zr, "zarr")):
        kw = {"consolidated": False} if engine == "zarr" else {}
        with xr.open_dataset(path, engine=engine, chunks={}, **kw) as back:
            np.testing.assert_allclose(
                back.acausal_posterior.values, ds.acausal_posterior.values, rtol=0, atol=1e-7
            )
            np.testing.assert_array_equal(back.map_position.values, res["summary.map_position"])
    post_bytes = {
        "nc": _h5_storage(nc, "acausal_posterior"),
        "zarr": sum(f.stat().st_size for f in (zr / "acausal_posterior").rglob("c/**/*")),
    }
    # uint16: mostly exact zeros, >= 30% smaller; float32 keeps every tiny probability's
    # mantissa (lossless), so on this broad 40-bin posterior it only shrinks (~25%)
    limit = 0.7 if dtype == "uint16" else 0.9
    for kind, size in post_bytes.items():
        assert size < limit * raw, (kind, size, raw)


def _h5_storage(path, name: str) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return f[name].id.get_storage_size()


_WRITER = textwrap.dedent(
    """
    import json, sys
    import dask.array as da
    import h5netcdf, zarr  # imported before the baseline: their import is not the write's cost
    import numpy as np
    import xarray as xr
    from physflow.stages.neuro.dataset import save_dataset

    def status(field):  # per address space (ru_maxrss would be inherited from pytest)
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith(field + ":"))

    n, s, chunk = 120_000, 200, 4_000  # float32: 92 MiB, chunks of 3 MiB
    def block(block_info=None):
        (a, b), _ = block_info[None]["array-location"]
        t = np.arange(a, b)[:, None]
        p = np.exp(-0.5 * ((np.arange(s)[None, :] - (t % s)) / 3.0) ** 2)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    post = da.map_blocks(block, chunks=((chunk,) * (n // chunk), (s,)), dtype=np.float32)
    ds = xr.Dataset({"acausal_posterior": (("time", "position"), post)})
    base = status("VmRSS")
    save_dataset(ds, sys.argv[1])
    print(json.dumps({"grown_mib": (status("VmHWM") - base) / 1024}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_saving_streams_chunk_by_chunk(tmp_path, suffix):
    """A 92 MiB posterior written in 3 MiB chunks: peak RSS grows by a few chunks (the chunk
    being built in float64, its float32 copy, the compressor's buffers), not by the array."""
    out = tmp_path / f"big{suffix}"
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(out)],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=True,
    )
    grown = json.loads(done.stdout.strip().splitlines()[-1])["grown_mib"]
    assert grown < 46, f"peak RSS grew by {grown:.0f} MiB writing a 92 MiB array"
    kw = {"engine": "h5netcdf"} if suffix == ".nc" else {"engine": "zarr", "consolidated": False}
    with xr.open_dataset(out, **kw) as back:
        assert back.acausal_posterior.shape == (120_000, 200)
        row = back.acausal_posterior[113_457].values
        assert int(row.argmax()) == 113_457 % 200 and abs(row.sum() - 1) < 1e-5
