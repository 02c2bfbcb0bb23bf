"""What is stored: zarr v3 objects (sample dimension first), ragged fields, bytes on disk,
split stability, the dataset card and its schema, corrupt shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

import physflow as pf
from physflow.cli import main

from .ml_stages import OUTPUTS, VARY, pipeline

ARGS = {"vary": VARY, "progress": False}
BOX_OUTPUTS = {**OUTPUTS, "boxes": "boxes"}


@pytest.fixture(scope="module")
def boxes_ds(tmp_path_factory):
    store = tmp_path_factory.mktemp("ragged") / "store"
    return pf.ml.generate(pipeline(), samples=30, shard_size=8, outputs=BOX_OUTPUTS,
                          store=store, **ARGS)  # fmt: skip


def test_ragged_field_round_trips(boxes_ds, tmp_path):
    ds = boxes_ds
    info = ds.card.fields["boxes"]
    assert info.ragged and info.shape == [None, 4] and info.dtype == "<f8"
    counts = set()
    for i in range(len(ds)):
        res = ds.sample_pipeline(i, pipeline()).run(store=tmp_path / "runs")
        assert ds[i]["boxes"].shape == res["boxes"].shape
        assert ds[i]["boxes"].tobytes() == res["boxes"].tobytes()
        counts.add(res["boxes"].shape[0])
    assert len(counts) > 2  # really variable
    batch = next(ds.iter_batches(5))
    assert isinstance(batch["boxes"], list) and isinstance(batch["x"], np.ndarray)
    assert [b.tobytes() for b in batch["boxes"]] == [ds[i]["boxes"].tobytes() for i in range(5)]


def test_ragged_encoding_is_flat_values_plus_offsets(boxes_ds):
    ds = boxes_ds
    shard = ds.card.shards[0]
    assert shard.layout["boxes"] == "ragged" and shard.layout["x"] == "fixed"
    store = ds.store
    zarr = pytest.importorskip("zarr")
    values = zarr.open_array(str(store.object_path(shard.arrays["boxes"])), mode="r")[:]
    offsets = zarr.open_array(str(store.object_path(shard.arrays["boxes/offsets"])), mode="r")[:]
    shapes = zarr.open_array(str(store.object_path(shard.arrays["boxes/shapes"])), mode="r")[:]
    assert values.ndim == 1 and len(offsets) == 9 and offsets[0] == 0
    for k in range(8):
        expected = ds[k]["boxes"]
        assert tuple(shapes[k]) == expected.shape
        assert np.array_equal(values[offsets[k] : offsets[k + 1]].reshape(shapes[k]), expected)
    x = zarr.open_array(str(store.object_path(shard.arrays["x"])), mode="r")
    assert x.shape == (8, 16)  # the sample dimension first
    assert np.array_equal(x[3], ds[3]["x"])


def test_ragged_in_xarray_and_torch(boxes_ds):
    xr_ds = boxes_ds.to_xarray()
    for i in (0, 9, 29):
        a, b = int(xr_ds["boxes_start"][i]), int(xr_ds["boxes_stop"][i])
        shape = tuple(int(n) for n in xr_ds["boxes_shape"][i])
        got = xr_ds["boxes"][a:b].values.reshape(shape)
        assert np.array_equal(got, boxes_ds[i]["boxes"])
    assert xr_ds["x"].dims == ("sample", "x_dim1")
    assert np.array_equal(xr_ds["x"][7], boxes_ds[7]["x"])
    assert type(xr_ds["x"].data).__module__.startswith("dask")  # lazy
    kinds = xr_ds["signal.kind"].values
    assert list(kinds[:3]) == [boxes_ds[i]["signal.kind"] for i in range(3)]
    pytest.importorskip("torch")
    batch = next(iter(boxes_ds.torch(shuffle=False).loader(batch_size=4)))
    assert isinstance(batch["boxes"], list) and batch["x"].shape == (4, 16)


def test_bytes_on_disk_close_to_raw(tmp_path):
    p = pipeline().with_values({"signal.n": 1024})
    ds = pf.ml.generate(p, samples=64, shard_size=32, outputs=OUTPUTS, store=tmp_path / "s", **ARGS)
    per_sample = 1024 * 4 + 8 + 8  # x float32[1024], y float64, phase float64
    params = 8 + 1 + 8  # amplitude float64, kind index uint8, sigma float64
    assert ds.card.raw_bytes == 64 * (per_sample + params)
    files = [f for f in (tmp_path / "s" / "objects").rglob("*") if f.is_file()]
    on_disk = sum(f.stat().st_size for f in files)
    assert on_disk == ds.card.stored_bytes  # only the shards' objects: no intermediates
    assert ds.card.stored_bytes <= 1.2 * ds.card.raw_bytes
    assert len(files) == 2 * 2 * 6  # 2 shards x 6 arrays x (chunk + zarr.json)


def test_splits_are_stable_when_growing(tmp_path):
    split = {"train": 0.6, "val": 0.2, "test": 0.2}
    small = pf.ml.generate(pipeline(), samples=40, shard_size=8, outputs=OUTPUTS, split=split,
                           store=tmp_path / "s", **ARGS)  # fmt: skip
    big = pf.ml.generate(pipeline(), samples=90, shard_size=8, outputs=OUTPUTS, split=split,
                         store=tmp_path / "s", **ARGS)  # fmt: skip
    for name in split:
        before = set(small.split(name).indices.tolist())
        after = set(big.split(name).indices.tolist())
        assert before == {i for i in after if i < 40}
    parts = [set(big.split(n).indices.tolist()) for n in split]
    assert set().union(*parts) == set(range(90)) and sum(map(len, parts)) == 90
    test = big.split("test")
    assert test[0]["index"] == int(test.indices[0])
    with pytest.raises(KeyError, match="splits"):
        big.split("tset")


def test_split_fractions_follow_a_binomial():
    from physflow.ml.sampling import assign_splits

    n = 200_000
    assigned = assign_splits(7, {"a": 0.7, "b": 0.2, "c": 0.1}, np.arange(n))
    for j, p in enumerate((0.7, 0.2, 0.1)):
        count = int(np.sum(assigned == j))
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p))


def test_card_matches_its_schema_and_describes_the_dataset(boxes_ds, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    path = boxes_ds.store.root / "datasets" / f"{boxes_ds.card.name}.json"
    card = json.loads(path.read_text())
    jsonschema.validate(card, pf.ml.card_json_schema())
    assert card["kind"] == "dataset" and card["samples"] == 30
    assert [s["node"] for s in card["stages"]] == ["signal", "noisy", "energy", "boxes"]
    assert card["stages"][0]["fingerprint"] == pipeline().nodes["signal"].stage.fingerprint
    assert card["params"]["signal.kind"]["distribution"] == {"choice": ["sine", "square"]}
    from physflow.ml.card import SEED_RULE, SPLIT_RULE

    assert "python" in card["environment"]
    assert card["seed_rule"] == SEED_RULE and card["split_rule"] == SPLIT_RULE
    assert card["fields"]["boxes"]["shape"] == [None, 4]
    assert main(["dataset", "schema", "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == pf.ml.card_json_schema()


def test_corrupt_shard_raises_and_is_recomputed_after_verify(tmp_path, capsys):
    store_dir = tmp_path / "s"
    ds = pf.ml.generate(pipeline(), samples=20, shard_size=8, outputs=OUTPUTS,
                        store=store_dir, **ARGS)  # fmt: skip
    expected = ds[9]["x"].copy()
    chunk = ds.store.object_path(ds.card.shards[1].arrays["x"]) / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[5] ^= 0x01
    chunk.write_bytes(bytes(data))
    fresh = pf.ml.open_dataset("mltest", store=store_dir)
    with pytest.raises(pf.CorruptObjectError, match="next run recomputes it"):
        fresh[9]  # detected, and the store healed: the shard is quarantined
    assert fresh[0]["x"] is not None  # other shards still read
    gone = (pf.CorruptObjectError, pf.MissingObjectError)
    with pytest.raises(gone):
        list(fresh.iter_batches(4))
    pytest.importorskip("torch")
    with pytest.raises(gone):
        list(fresh.torch(shuffle=True).loader(num_workers=0))
    assert len(fresh.verify()) == 1
    assert main(["dataset", "verify", "mltest", "--store", str(store_dir)]) == 1
    again = pf.ml.generate(pipeline(), samples=20, shard_size=8, outputs=OUTPUTS,
                           store=store_dir, **ARGS)  # fmt: skip
    assert again.card.generation.computed_samples == 8  # only the healed shard
    assert again[9]["x"].tobytes() == expected.tobytes()
    assert again.verify() == [] and pf.Store(store_dir).verify(quarantine=False).ok
    capsys.readouterr()


def test_cli_info_and_ls(boxes_ds, capsys):
    store = str(boxes_ds.store.root)
    assert main(["dataset", "ls", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "mltest" in out and "30 samples" in out
    assert main(["dataset", "info", "mltest", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "field boxes = boxes: <f8 ?x4 ragged" in out and "signal.kind" in out
    assert main(["dataset", "info", "mltset", "--store", store]) == 2
    assert "Did you mean 'mltest'" in capsys.readouterr().err
