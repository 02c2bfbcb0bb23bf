"""Round trips through every codec; digests independent of chunking and compression."""

from __future__ import annotations

import json

import msgspec
import numpy as np
import pytest

import physflow as pf
from physflow.artifacts import arrays
from physflow.artifacts.errors import PickleNotAllowedError

from . import store_stages as S

LARGE = 40_000  # elements: above the 16 KiB inline limit for every dtype below


def _roundtrip(store, value):
    entry = store.put_value(value)
    back = store.get_value(entry)
    assert entry.digest == pf.digest(value)
    assert pf.digest(back) == entry.digest
    return entry, back


DTYPES = ["<f4", ">f8", "<c8", ">c16", "<i2", ">i8", "u1", "<u4", "?", "<f2", ">i4"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 7, LARGE])
def test_numpy_round_trip_dtypes(store, dtype, n):
    rng = np.random.default_rng(1)
    value = (rng.standard_normal(n) * 100).astype(np.dtype(dtype))
    if np.dtype(dtype).kind == "c":
        value = value + 1j * (rng.standard_normal(n)).astype(np.dtype(dtype))
    entry, back = _roundtrip(store, value)
    assert back.dtype == value.dtype and back.shape == value.shape
    np.testing.assert_array_equal(back, value)
    assert bool(entry.objects) == (value.nbytes > 16 * 1024)


@pytest.mark.parametrize(
    "value",
    [
        np.array(3.5),
        np.array(2 + 1j, dtype=">c16"),
        np.zeros((0, 5), dtype=np.float32),
        np.zeros((3, 0, 2), dtype=">i4"),
        np.arange(200_000, dtype=np.int64).reshape(20, 100, 100),
        np.asfortranarray(np.arange(60_000, dtype=np.float64).reshape(300, 200)),
        np.arange(100_000, dtype=np.float32)[::3],
    ],
    ids=["0d", "0d-complex-be", "empty", "empty-3d", "3d", "fortran", "strided"],
)
def test_numpy_round_trip_shapes(store, value):
    _, back = _roundtrip(store, value)
    np.testing.assert_array_equal(back, value)
    assert back.dtype == value.dtype and back.shape == value.shape


@pytest.mark.parametrize(
    "value",
    [
        np.array([f"s{i}" for i in range(5000)]),
        np.arange(5000).astype("datetime64[ns]"),
        np.zeros(3000, dtype=[("a", "<f4"), ("b", ">i2"), ("c", "S3")]),
    ],
    ids=["unicode", "datetime", "structured"],
)
def test_numpy_without_zarr_type_round_trips(store, value):
    _, back = _roundtrip(store, value)
    assert back.dtype == value.dtype
    np.testing.assert_array_equal(back, value)


def test_bytes_and_containers(store):
    big = bytes(range(256)) * 1000
    value = {
        "blob": big,
        "small": b"abc",
        "arr": np.arange(50_000.0),
        "t": (1, 2.5, "x", None),
        7: [True, 1 + 2j],
    }
    _, back = _roundtrip(store, value)
    assert back["blob"] == big and back["small"] == b"abc" and back[7] == [True, 1 + 2j]
    np.testing.assert_array_equal(back["arr"], value["arr"])
    assert back["t"] == (1, 2.5, "x", None)


class Result(msgspec.Struct, frozen=True):
    name: str
    samples: np.ndarray
    gain: float


def test_struct_with_large_array(store):
    value = Result("x", np.linspace(0, 1, 50_000), 2.0)
    entry, back = _roundtrip(store, value)
    assert isinstance(back, Result) and back.name == "x"
    np.testing.assert_array_equal(back.samples, value.samples)
    assert len(entry.objects) == 1


def test_digest_independent_of_chunking_and_compression(tmp_path):
    rng = np.random.default_rng(3)
    value = np.round(rng.standard_normal((400, 200)), 1)  # compressible
    plain = pf.Store(tmp_path / "plain")
    squeezed = pf.Store(tmp_path / "zstd", compress=True)
    e1 = plain.put_value(value)
    e2 = squeezed.put_value(value)
    assert e1.digest == e2.digest == pf.digest(value)
    digests = set()
    for chunks in [(400, 200), (30, 200), (100, 64), (7, 33)]:
        for compress in (False, True):
            sink_store = pf.Store(tmp_path / f"c{chunks[0]}-{chunks[1]}-{compress}")

            def write(sink, chunks=chunks, compress=compress):
                w = arrays.ChunkedWriter(
                    sink, "", value.shape, value.dtype, chunks, compress=compress
                )
                for index in w.layout.indices():
                    w.write_chunk(index, value[w.layout.region(index)])
                return w.finish()[0]

            d = sink_store.write_object(write)
            digests.add(d)
            np.testing.assert_array_equal(sink_store.array_reader(d).read_all(), value)
    assert digests == {pf.digest(value)}
    size = {
        s: sum(p.stat().st_size for p in s.objects_dir.rglob("*") if p.is_file())
        for s in (plain, squeezed)
    }
    assert size[squeezed] < 0.7 * size[plain]
    meta = json.loads((squeezed.object_path(e2.digest) / "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "zstd"]


def test_objects_open_with_zarr_and_dask(tmp_path):
    import dask.array as da
    import zarr

    value = np.arange(500_000, dtype=np.float32).reshape(500, 1000)
    for compress in (False, True):
        store = pf.Store(tmp_path / str(compress), compress=compress)
        entry = store.put_value(value)
        z = zarr.open_array(str(store.object_path(entry.digest)), mode="r")
        np.testing.assert_array_equal(z[:], value)
        from physflow.artifacts.lazy import open_lazy

        lazy = open_lazy(store, entry)
        assert isinstance(lazy, da.Array)
        assert float(lazy.sum().compute()) == pytest.approx(float(value.sum(dtype=np.float64)))
        np.testing.assert_array_equal(da.from_zarr(z).compute(), value)


def _field():
    import xarray as xr

    t = np.arange(400) * 1e-3
    x = np.linspace(-1, 1, 60)
    data = np.sin(2 * np.pi * 5 * t)[:, None] * np.cos(np.pi * x)[None, :]
    return xr.DataArray(
        data,
        dims=("t", "x"),
        coords={
            "t": t,
            "x": x,
            "probe": ("x", np.array([f"p{i}" for i in range(60)])),
            "gain": 2.5,
        },
        name="field",
        attrs={"units": "V", "calibrated": True, "taps": [1, 2, 3]},
    )


def test_xarray_dataarray_round_trip_lazy(store):
    import dask.array as da
    import xarray as xr

    value = _field()
    entry, back = _roundtrip(store, value)
    assert isinstance(back, xr.DataArray)
    assert isinstance(back.data, da.Array)  # read lazily
    assert back.identical(value)
    assert back.attrs == {"units": "V", "calibrated": True, "taps": [1, 2, 3]}
    opened = xr.open_zarr(str(store.object_path(entry.objects[0])), consolidated=False)
    np.testing.assert_array_equal(opened["field"].values, value.values)
    assert opened["field"].attrs["units"] == "V"


def test_xarray_dataset_round_trip_and_digest_sensitivity(store):
    import xarray as xr

    field = _field()
    ds = xr.Dataset(
        {"field": field, "power": ("t", (field**2).sum("x").values)}, attrs={"run": "a", "seed": 3}
    )
    entry, back = _roundtrip(store, ds)
    assert isinstance(back, xr.Dataset) and back.identical(ds)
    variants = [
        ds.assign_attrs(run="b"),
        ds.rename({"power": "energy"}),
        ds.assign_coords(x=ds.x + 1e-12),
        ds.assign({"power": ds.power.assign_attrs(units="W")}),
        ds.set_coords("power"),
    ]
    digests = {pf.digest(v) for v in variants}
    assert len(digests) == len(variants) and entry.digest not in digests


def test_torch_round_trip(store):
    torch = pytest.importorskip("torch")
    values = [
        torch.arange(30_000, dtype=torch.float32).reshape(100, 300),
        torch.ones(5, dtype=torch.bfloat16) * 1.5,
        torch.arange(20_000, dtype=torch.bfloat16),
        torch.tensor(3, dtype=torch.int64),
        torch.randn(50, 50, dtype=torch.complex64),
    ]
    for value in values:
        _, back = _roundtrip(store, value)
        assert isinstance(back, torch.Tensor) and back.dtype == value.dtype
        assert torch.equal(back, value)
    # a tensor and the equal numpy array are different values
    assert pf.digest(values[0]) != pf.digest(values[0].numpy())


def test_jax_round_trip(store):
    jnp = pytest.importorskip("jax.numpy")
    for value in [
        jnp.arange(20_000, dtype=jnp.float32),
        jnp.ones((3, 4), dtype=jnp.int32),
        jnp.arange(10_000, dtype=jnp.bfloat16),
    ]:
        _, back = _roundtrip(store, value)
        assert type(back) is type(value) and back.dtype == value.dtype
        np.testing.assert_array_equal(
            np.asarray(back, dtype=np.float64), np.asarray(value, dtype=np.float64)
        )


def test_cupy_round_trip(store):
    cupy = pytest.importorskip("cupy")
    value = cupy.arange(10_000, dtype=cupy.float32)
    _, back = _roundtrip(store, value)
    assert isinstance(back, cupy.ndarray) and bool((back == value).all())


def test_unsupported_type_names_stage_output_and_type(store):
    p = pf.Pipeline("p")
    p.add("thing", S.make_opaque)
    res = p.run(store=store)
    err = res.errors["thing"]
    assert "make_opaque" in err and "'thing'" in err and "output 'value'" in err
    assert "store_stages.Opaque" in err and "pickle=True" in err


def test_pickle_opt_in_is_unsafe_and_gated(tmp_path):
    store = pf.Store(tmp_path / "s")
    p = pf.Pipeline("p")
    p.add("thing", S.make_opaque_pickled)
    res = p.run(store=store)
    assert res.ok
    entry = res.entries("thing")["value"]
    assert entry.unsafe and entry.objects
    with pytest.raises(PickleNotAllowedError, match="allow_pickle=True"):
        store.get_value(entry)
    trusted = pf.Store(tmp_path / "s", allow_pickle=True)
    assert trusted.get_value(entry) == S.Opaque(7)
    assert p.run(store=trusted).hits == ["thing"]


def _codecs_of(store, digest):
    meta = json.loads((store.object_path(digest) / "zarr.json").read_text())
    return [c["name"] for c in meta["codecs"]]


def test_compression_per_stage_and_per_store(tmp_path):
    cfg = S.RampConfig(n=200_000, scale=0.5)
    for store_compress in (False, True):
        store = pf.Store(tmp_path / f"s{store_compress}", compress=store_compress)
        p = pf.Pipeline("p")
        p.add("z", S.ramp_zstd, cfg)
        p.add("r", S.ramp_raw, cfg)
        p.add("d", S.ramp, S.RampConfig(n=200_000, scale=0.25))  # the store decides
        res = p.run(store=store)
        assert res.ok, res.errors
        assert res.digest("z") == res.digest("r")  # same value, same digest
        assert _codecs_of(store, res.digest("d")) == (
            ["bytes", "zstd"] if store_compress else ["bytes"]
        )
        zstd_store = pf.Store(tmp_path / "z-only")
        p2 = pf.Pipeline("p2")
        p2.add("z", S.ramp_zstd, cfg)
        assert _codecs_of(zstd_store, p2.run(store=zstd_store).digest("z")) == ["bytes", "zstd"]
        raw_store = pf.Store(tmp_path / "r-only", compress=True)
        p3 = pf.Pipeline("p3")
        p3.add("r", S.ramp_raw, cfg)
        assert _codecs_of(raw_store, p3.run(store=raw_store).digest("r")) == ["bytes"]
        np.testing.assert_array_equal(res["z"], res["r"])


def test_xarray_unnamed_dataarray_and_scalar_coord(store):
    xr = pytest.importorskip("xarray")
    value = xr.DataArray(np.ones((100, 50)), dims=("a", "b"), coords={"a": np.arange(100), "s": 3})
    _, back = _roundtrip(store, value)
    assert back.name is None and back.identical(value)
