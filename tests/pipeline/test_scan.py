"""Parameter scans: shared planning, counted executions, datasets, seeds, failures, executors.

Executions are counted by files the stages write (see test_scan_stages), never by mocks.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.manifests.scan_manifest import load_scan_manifest
from physflow.scans.axes import ScanError

from .test_scan_stages import executions, link, q_function

pytestmark = pytest.mark.timeout(120)


def counts(log) -> dict[str, int]:
    return {name: executions(log, name) for name in ("tx", "channel", "detect", "metrics")}


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "log"
    path.mkdir()
    return path


@pytest.fixture
def store(tmp_path):
    return pf.Store(tmp_path / "store")


def test_late_stage_scan_runs_early_stages_once_and_is_incremental(log, store):
    p = link(log)
    thresholds = [-0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8]
    ds = p.scan({"detect.threshold": thresholds}, collect=["metrics.ber"], store=store)
    assert counts(log) == {"tx": 1, "channel": 1, "detect": 8, "metrics": 8}
    assert ds["metrics.ber"].dims == ("detect.threshold",)
    assert ds["detect.threshold"].values.tolist() == thresholds
    assert ds.attrs["misses"] == 18 and ds.attrs["hits"] == 0

    again = p.scan({"detect.threshold": thresholds}, collect=["metrics.ber"], store=store)
    assert counts(log) == {"tx": 1, "channel": 1, "detect": 8, "metrics": 8}
    assert again.attrs["misses"] == 0 and again.attrs["hits"] == 18
    assert np.array_equal(again["metrics.ber"].values, ds["metrics.ber"].values)

    extended = p.scan(
        {"detect.threshold": [*thresholds, 1.0, 1.2]}, collect=["metrics.ber"], store=store
    )
    assert counts(log) == {"tx": 1, "channel": 1, "detect": 10, "metrics": 10}
    assert extended.attrs["misses"] == 4
    assert np.array_equal(extended["metrics.ber"].values[:8], ds["metrics.ber"].values)


def test_refining_a_grid_runs_only_the_new_points(log, store):
    p = link(log)
    coarse = {"channel.snr_db": [0.0, 4.0, 8.0], "detect.threshold": [0.0, 0.2]}
    p.scan(coarse, collect=["metrics.ber"], store=store)
    assert counts(log) == {"tx": 1, "channel": 3, "detect": 6, "metrics": 6}
    fine = {"channel.snr_db": [0.0, 2.0, 4.0, 6.0, 8.0], "detect.threshold": [0.0, 0.1, 0.2]}
    ds = p.scan(fine, collect=["metrics.ber"], store=store)
    # 15 points, 6 already known: 2 new channels, 9 new (detect, metrics) pairs
    assert counts(log) == {"tx": 1, "channel": 5, "detect": 15, "metrics": 15}
    assert ds["metrics.ber"].shape == (5, 3)


def test_grid_matches_direct_loop_of_runs(log, store):
    p = link(log)
    snrs, thresholds = [0.0, 4.0, 8.0], [-0.1, 0.0, 0.1, 0.3]
    ds = p.scan(
        {"channel.snr_db": snrs, "detect.threshold": thresholds},
        collect=["metrics.ber", "metrics.errors"],
        store=store,
    )
    assert ds["metrics.ber"].dims == ("channel.snr_db", "detect.threshold")
    assert ds["metrics.ber"].shape == (3, 4)
    assert ds["channel.snr_db"].values.tolist() == snrs
    assert ds["detect.threshold"].values.tolist() == thresholds
    assert ds["metrics.errors"].dtype.kind == "i"
    # channel ran once per SNR, detect once per point
    assert counts(log) == {"tx": 1, "channel": 3, "detect": 12, "metrics": 12}
    for (i, snr), (j, thr) in itertools.product(enumerate(snrs), enumerate(thresholds)):
        res = p.with_values({"channel.snr_db": snr, "detect.threshold": thr}).run(
            store=pf.Store(store.root.parent / "direct")
        )
        assert ds["metrics.ber"].values[i, j] == res["metrics.ber"]
        assert ds["metrics.errors"].values[i, j] == res["metrics.errors"]
    # physics: at threshold 0, BER ~ Q(1/sigma) within 5 binomial standard deviations
    n = 2000
    for i, snr in enumerate(snrs):
        expected = q_function(10 ** (snr / 20))
        tolerance = 5 * math.sqrt(expected * (1 - expected) / n) + 1e-3
        assert abs(ds["metrics.ber"].values[i, 1] - expected) < tolerance


def test_seed_axis_gives_independent_streams(log, store):
    p = link(log, seed=5)
    ds = p.scan({"seed": [11, 12, 13]}, collect=["channel", "metrics.ber"], store=store)
    assert ds["seed"].values.tolist() == [11, 12, 13]
    noisy = ds["channel"].values  # (3, 2000) small enough to be data
    assert noisy.shape == (3, 2000)
    # every seed: its own transmitter and noise; equal to a run with that pipeline seed
    assert counts(log)["tx"] == 3 and counts(log)["channel"] == 3
    for k, seed in enumerate([11, 12, 13]):
        direct = p.with_values({}, seed=seed).run(store=pf.Store(store.root.parent / "d"))
        assert np.array_equal(noisy[k], direct["channel"])
    noise = noisy - np.sign(noisy)  # rough residual; streams must not be copies or shifts
    assert not np.array_equal(noisy[0], noisy[1])
    corr = np.corrcoef(noise)
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.15)


def test_zip_points_and_sample_use_a_point_dimension(log, store):
    p = link(log)
    z = p.scan(
        {"channel.snr_db": [0.0, 3.0, 6.0], "detect.threshold": [0.0, 0.1, 0.2]},
        mode="zip",
        collect=["metrics.ber"],
        store=store,
    )
    assert z["metrics.ber"].dims == ("point",)
    assert z["channel.snr_db"].dims == ("point",)
    assert z["detect.threshold"].values.tolist() == [0.0, 0.1, 0.2]

    pts = p.scan(
        points=[{"channel.snr_db": 3.0, "seed": 1}, {"channel.snr_db": 6.0, "seed": 2}],
        collect=["metrics.ber"],
        store=store,
    )
    assert pts.sizes == {"point": 2} and pts["seed"].values.tolist() == [1, 2]

    spec = {
        "n": 8,
        "method": "sobol",
        "seed": 3,
        "ranges": {
            "channel.snr_db": {"low": 1.0, "high": 10.0, "log": True},
            "detect.threshold": [-0.2, 0.2],
        },
    }
    s1 = p.scan(sample=spec, collect=["metrics.ber"], store=store)
    s2 = p.scan(sample=spec, collect=["metrics.ber"], store=store)
    assert s1.sizes == {"point": 8}
    assert np.array_equal(s1["channel.snr_db"].values, s2["channel.snr_db"].values)
    assert s2.attrs["misses"] == 0
    assert np.all((s1["channel.snr_db"] >= 1.0) & (s1["channel.snr_db"] <= 10.0))
    assert len(set(s1["detect.threshold"].values.tolist())) == 8
    m = load_scan_manifest(s1.attrs["manifest_path"])
    assert m.sample["method"] == "sobol" and m.mode == "sample"


def test_failed_point_is_nan_and_recorded_other_points_continue(log, store):
    p = link(log).with_values({"channel.fail_snr_db": 4.0})
    ds = p.scan(
        {"channel.snr_db": [2.0, 4.0, 6.0]}, collect=["metrics.ber", "metrics.errors"], store=store
    )
    ber = ds["metrics.ber"].values
    assert np.isnan(ber[1]) and not np.isnan(ber[0]) and not np.isnan(ber[2])
    assert ds["metrics.errors"].dtype == np.float64  # ints promoted so NaN can mark the gap
    assert ds.attrs["points_failed"] == 1
    m = load_scan_manifest(ds.attrs["manifest_path"])
    assert m.status == "failed"
    assert [pt.status for pt in m.points] == ["ok", "failed", "ok"]
    bad = m.points[1]
    assert bad.failed_node == "channel" and bad.values == {"channel.snr_db": 4.0}
    assert "channel model undefined at 4.0 dB" in bad.error
    assert m.point_nodes(1)["channel"].traceback
    assert m.failures == {1: bad.error}

    log2 = log.parent / "log2"
    log2.mkdir()
    q = link(log2).with_values({"channel.fail_snr_db": 2.0})
    ff = q.scan(
        {"channel.snr_db": [2.0, 4.0, 6.0]},
        collect=["metrics.ber"],
        fail_fast=True,
        store=pf.Store(log.parent / "ff"),
        executor="serial",
    )
    assert np.isnan(ff["metrics.ber"].values[0])
    statuses = [pt.status for pt in load_scan_manifest(ff.attrs["manifest_path"]).points]
    assert statuses[0] == "failed" and "cancelled" in statuses


def test_manifest_maps_every_point_to_its_node_records(log, store):
    p = link(log)
    ds = p.scan(
        {"channel.snr_db": [1.0, 5.0], "detect.threshold": [0.0, 0.2]},
        collect=["metrics.ber"],
        store=store,
    )
    m = load_scan_manifest(ds.attrs["manifest_path"])
    assert m.kind == "scan" and m.dims == ["channel.snr_db", "detect.threshold"]
    assert m.coords["detect.threshold"] == [0.0, 0.2]
    assert len(m.points) == 4 and len(m.nodes) == 1 + 2 + 4 + 4  # shared nodes listed once
    for i, point in enumerate(m.points):
        a, b = point.index
        records = m.point_nodes(i)
        assert set(records) == {"tx", "channel", "detect", "metrics"}
        assert records["detect"].config["threshold"] == point.values["detect.threshold"]
        assert records["metrics"].outputs["ber"].value == ds["metrics.ber"].values[a, b]
    assert m.points[0].nodes["tx"] == m.points[3].nodes["tx"]
    assert m.open(3, "metrics.ber") == ds["metrics.ber"].values[1, 1]
    direct = p.with_values({"channel.snr_db": 5.0}).run(store=store)
    assert np.array_equal(m.open(2, "channel"), direct["channel"])
    # the file validates against the exported JSON Schema
    import json

    import jsonschema

    from physflow.manifests.scan_manifest import scan_manifest_schema

    with open(ds.attrs["manifest_path"]) as fh:
        jsonschema.validate(json.load(fh), scan_manifest_schema())
    assert m.find(**{"channel.snr_db": 5.0, "detect.threshold": 0.2}) == [3]


def test_large_arrays_are_lazy_dask_arrays_over_the_store(log, store):
    p = link(log, n=4096)  # 32 KiB per point: stored as objects, not inline
    ds = p.scan({"channel.snr_db": [0.0, 10.0]}, collect=["channel", "tx"], store=store)
    import dask.array as da

    assert isinstance(ds["channel"].data, da.Array)
    assert ds["channel"].dims == ("channel.snr_db", "channel_dim0")
    direct = p.with_values({"channel.snr_db": 10.0}).run(store=store)
    assert direct.misses == []  # everything was cached by the scan
    assert np.array_equal(ds["channel"].isel({"channel.snr_db": 1}).values, direct["channel"])
    # the tx output is one shared object: both rows equal
    tx = ds["tx"].values
    assert np.array_equal(tx[0], tx[1])


def test_interrupted_scan_resumes(log, store, tmp_path):
    stop = tmp_path / "stop"
    stop.touch()
    p = link(log).with_values({"channel.stop_after": 3, "channel.stop_file": str(stop)})
    snrs = [float(x) for x in range(6)]
    with pytest.raises(KeyboardInterrupt, match="Run the same scan again to resume"):
        p.scan({"channel.snr_db": snrs}, collect=["metrics.ber"], store=store)
    assert counts(log)["channel"] == 3
    manifests = list(store.manifests_dir.glob("scan-*.json"))
    assert len(manifests) == 1 and load_scan_manifest(manifests[0]).status == "interrupted"
    stop.unlink()
    before = counts(log)
    ds = p.scan({"channel.snr_db": snrs}, collect=["metrics.ber"], store=store)
    after = counts(log)
    assert after["channel"] - before["channel"] == 3  # only the 3 channels that never ran
    assert after["tx"] == 1
    assert not np.any(np.isnan(ds["metrics.ber"].values))


def test_serial_and_processes_give_identical_datasets(log, tmp_path):
    p = link(log)
    axes = {"channel.snr_db": [0.0, 3.0, 6.0], "seed": [1, 2]}
    serial = p.scan(axes, collect=["metrics.ber", "channel"], store=tmp_path / "s1")
    procs = p.scan(
        axes,
        collect=["metrics.ber", "channel"],
        store=tmp_path / "s2",
        executor="processes",
        workers=2,
    )
    assert procs.attrs["misses"] == serial.attrs["misses"] > 0
    assert serial.equals(procs)
    assert counts(log)["channel"] == 12  # 6 per store: each executor really ran the work


def test_threads_executor_and_progress_events(log, store):
    p = link(log)
    events = []
    ds = p.scan(
        {"detect.threshold": [0.0, 0.5]},
        collect=["metrics.ber"],
        store=store,
        executor="threads",
        workers=2,
        progress=events.append,
    )
    assert ds.sizes == {"detect.threshold": 2}
    kinds = [e.kind for e in events]
    assert kinds.count("done") == 6 and events[0].total == 6


def test_default_collect_is_the_sinks_and_multi_output_expands(log, store):
    ds = link(log).scan({"detect.threshold": [0.0]}, store=store)
    assert set(ds.data_vars) == {"metrics.ber", "metrics.errors"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"axes": {"chanel.snr_db": [1.0]}}, "Did you mean 'channel'"),
        ({"axes": {"channel.snr": [1.0]}}, "has no field 'snr'"),
        ({"axes": {"channel.snr_db": ["loud"]}}, "'channel.snr_db' = 'loud'"),
        ({"axes": {"channel.snr_db": 3.0}}, "values must be a list"),
        ({"axes": {"channel.snr_db": [1.0, 1.0]}}, "twice"),
        ({"axes": {"seed": [-1]}}, "seeds must be ints >= 0"),
        (
            {"axes": {"channel.snr_db": [1.0], "detect.threshold": [0.0, 1.0]}, "mode": "zip"},
            "same number of values",
        ),
        ({"axes": {"channel.snr_db": [1.0]}, "collect": ["metrics.bre"]}, "Did you mean 'ber'"),
        ({"axes": {"channel.snr_db": [1.0]}, "mode": "cartesian"}, "use 'grid' or 'zip'"),
        ({"points": [{"channel.snr_db": 1.0}, {"detect.threshold": 0.0}]}, "points[1] sets"),
        ({"sample": {"n": 4, "ranges": {"channel.snr_db": [5.0, 1.0]}}}, "must be smaller"),
        ({}, "exactly one way"),
    ],
)
def test_bad_scans_raise_clear_errors(log, store, kwargs, message):
    kwargs.setdefault("collect", ["metrics.ber"])
    with pytest.raises(ScanError) as info:
        link(log).scan(store=store, **kwargs)
    assert message in str(info.value)
    assert counts(log)["tx"] == 0


@pytest.mark.slow
def test_dask_local_cluster_scan_equals_serial(log, tmp_path):
    pytest.importorskip("distributed")
    p = link(log)
    axes = {"channel.snr_db": [0.0, 5.0], "detect.threshold": [0.0, 0.2]}
    serial = p.scan(axes, collect=["metrics.ber"], store=tmp_path / "s1")
    with pf.DaskExecutor(workers=2) as cluster:
        on_dask = p.scan(axes, collect=["metrics.ber"], store=tmp_path / "s2", executor=cluster)
    assert on_dask.attrs["misses"] == serial.attrs["misses"] == 1 + 2 + 4 + 4
    assert serial.equals(on_dask)


def test_lazy_bytes_threshold_chooses_eager_or_lazy(log, store):
    import dask.array as da

    p = link(log, n=4096)
    eager = p.scan(
        {"channel.snr_db": [0.0, 10.0]}, collect=["channel"], store=store, lazy_bytes=1 << 20
    )
    lazy = p.scan({"channel.snr_db": [0.0, 10.0]}, collect=["channel"], store=store, lazy_bytes=0)
    assert isinstance(eager["channel"].data, np.ndarray)
    assert isinstance(lazy["channel"].data, da.Array)
    assert eager.equals(lazy.compute())


def test_scan_manifest_file_is_the_json_of_the_whole_struct_when_replayed_or_not(log, store):
    """Scan manifests splice node records encoded apart (reused from plan records on replays):
    the file equals encoding the whole ScanManifest, and a replayed scan's node records equal
    the per-node ones."""
    import msgspec

    from physflow.manifests.writer import _ENCODER, node_record
    from physflow.scans.run import run_scan

    p = link(log)
    axes = {"detect.threshold": [-0.2, 0.0, 0.2]}
    results = []
    for attempt in range(3):  # misses; replayed; hits node by node
        res = run_scan(p, axes, ["metrics.ber"], store=store)
        assert res.outcome.replayed == (attempt == 1)
        if attempt == 1:
            store.drop_plans()
        states = res.outcome.states
        records = [node_record(res.outcome.nodes[u], s, u) for u, s in states.items()]
        whole = msgspec.structs.replace(res.manifest, nodes=records)
        assert _ENCODER.encode(whole) == Path(res.manifest_path).read_bytes()
        assert load_scan_manifest(res.manifest_path).nodes == records
        results.append(res)
    replayed, per_node = results[1].manifest.nodes, results[2].manifest.nodes
    assert replayed == per_node and {n.status for n in replayed} == {"hit"}
