"""Run manifests: written for ok / failed / interrupted runs, valid against the exported JSON
Schema, with environment capture; the reader opens outputs (eager and lazy) and reports objects
removed from the store."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import physflow as pf
from physflow.manifests.environment import capture_environment
from physflow.manifests.reader import ManifestError
from physflow.manifests.schema_export import manifest_json_schema

from .manifest_stages import WaveConfig, broken, interrupt, mean_power, wave


def pipeline(last=mean_power) -> pf.Pipeline:
    p = pf.Pipeline("m", seed=3)
    p.add("wave", wave, WaveConfig())
    p.add("power", last, signal="wave.signal")
    return p


def validate(path: str | Path) -> dict:
    data = json.loads(Path(path).read_text())
    jsonschema.validate(data, manifest_json_schema("run"))
    return data


def test_ok_failed_interrupted_manifests_validate(tmp_path):
    store = tmp_path / "store"
    ok = pipeline().run(store=store)
    data = validate(ok.manifest_path)
    assert data["status"] == "ok" and data["schema_version"] == 1
    power = next(n for n in data["nodes"] if n["id"] == "power")
    # mean power of A*cos over whole periods is A^2/2
    assert power["outputs"]["value"]["value"] == pytest.approx(2.0)
    assert power["outputs"]["value"]["units"] == "W"
    assert power["metrics"] == {"value": pytest.approx(2.0)}
    w = next(n for n in data["nodes"] if n["id"] == "wave")
    assert w["outputs"]["signal"]["units"] == "V"
    assert w["outputs"]["signal"]["shape"] == [50_000]
    assert w["metrics"] == {"stats.peak": pytest.approx(2.0), "stats.n": 50_000.0}
    assert power["input_refs"] == {"signal": "wave.signal"}

    failed = pipeline(broken).run(store=store)
    data = validate(failed.manifest_path)
    assert data["status"] == "failed" and data["failed"] == 1 and data["hits"] == 1
    node = next(n for n in data["nodes"] if n["id"] == "power")
    assert node["error"] == "RuntimeError: this stage always fails"

    before = set((store / "manifests").iterdir())
    with pytest.raises(KeyboardInterrupt):
        pipeline(interrupt).run(store=store)
    (new,) = set((store / "manifests").iterdir()) - before
    data = validate(new)
    assert data["status"] == "interrupted"


def test_scan_manifest_schema_exports():
    schema = manifest_json_schema("scan")
    jsonschema.Draft202012Validator.check_schema(schema)
    with pytest.raises(ValueError, match="unknown manifest kind"):
        manifest_json_schema("nope")


def test_environment_records_git_commit_of_the_working_directory(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (repo / "model.py").write_text("x = 1\n")
    run("add", "model.py")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    result = pipeline().run(store=tmp_path / "store")
    env = result.manifest.environment
    assert env.git_commit == head and env.git_dirty is False and env.cwd == str(repo)
    assert env.python and env.host and env.packages["numpy"] == np.__version__
    outside = capture_environment(str(tmp_path))
    assert outside.git_commit is None


def test_reader_opens_outputs(tmp_path):
    result = pipeline().run(store=tmp_path / "store")
    m = pf.load_manifest(result.manifest_path)
    assert list(m.nodes) == ["wave", "power"]
    assert m.status == "ok" and m.run_id == result.manifest.run_id
    outs = m.outputs("wave")
    assert set(outs) == {"signal", "stats"} and outs["signal"].dtype == "<f8"
    signal = m.open("wave.signal")
    np.testing.assert_array_equal(signal, result["wave.signal"])
    assert m.open("power") == pytest.approx(2.0)
    assert m.open("wave.stats") == {"peak": pytest.approx(2.0), "n": 50_000}
    assert set(m.open("wave")) == {"signal", "stats"}
    lazy = m.open("wave.signal", lazy=True)
    assert type(lazy).__module__.startswith("dask")
    np.testing.assert_array_equal(lazy.compute(), signal)
    da = m.open_xarray("wave.signal")
    assert da.attrs["units"] == "V" and float(da.max()) == pytest.approx(2.0)
    assert m.metrics()["power.value"] == pytest.approx(2.0)
    assert m.digests()["wave.signal"] == result.digest("wave.signal")
    with pytest.raises(KeyError, match="Did you mean 'power'"):
        m.open("powr")
    with pytest.raises(KeyError, match="no output 'sig'"):
        m.open("wave.sig")


def test_reader_reports_objects_gone_from_the_store(tmp_path):
    store = pf.Store(tmp_path / "store")
    result = pipeline().run(store=store)
    m = pf.load_manifest(result.manifest_path)
    digest = m.outputs("wave")["signal"].digest
    shutil.rmtree(store.object_path(digest))
    with pytest.raises(pf.MissingObjectError, match=r"wave\.signal"):
        m.open("wave.signal")
    assert m.open("power") == pytest.approx(2.0)  # inline values need no object
    store.gc(max_bytes=0, keep_manifests=0)
    with pytest.raises(pf.MissingObjectError, match="Re-run"):
        pf.load_manifest(result.manifest_path).open("power")


def test_reader_finds_a_moved_store(tmp_path):
    result = pipeline().run(store=tmp_path / "a")
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = tmp_path / "b" / "manifests" / Path(result.manifest_path).name
    m = pf.load_manifest(moved)
    assert m.store.location == str(tmp_path / "b")
    assert m.open("wave.signal").shape == (50_000,)


def test_not_a_manifest(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ManifestError, match="not a physflow run manifest"):
        pf.load_manifest(bad)
    with pytest.raises(ManifestError, match="no such manifest"):
        pf.load_manifest(tmp_path / "missing.json")


def test_spliced_manifest_is_the_json_of_the_whole_struct(tmp_path):
    """Runs write the header and the node records encoded apart; the file must be exactly what
    encoding one RunManifest holding both gives (and validate), for misses, hits and replays."""
    import msgspec

    from physflow.manifests.writer import _ENCODER, node_record

    store = tmp_path / "store"
    for attempt in range(3):  # misses, then a replay, then hits node by node
        res = pipeline().run(store=store)
        if attempt == 1:
            assert res.outcome.replayed
            pf.Store(store).drop_plans()
        on_disk = Path(res.manifest_path).read_bytes()
        records = [node_record(res.outcome.nodes[u], s) for u, s in res.outcome.states.items()]
        whole = msgspec.structs.replace(res.manifest, nodes=records)
        assert _ENCODER.encode(whole) == on_disk
        validate(res.manifest_path)
