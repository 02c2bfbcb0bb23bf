"""fsspec locations: memory:// and file:// stores behave like local ones."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import physflow as pf

from . import store_stages as S

pytest.importorskip("fsspec")


@pytest.fixture(params=["memory", "file"])
def url_store(request, tmp_path):
    if request.param == "memory":
        url = f"memory://physflow-test-{uuid.uuid4().hex}"
    else:
        url = f"file://{tmp_path}/fsspec-store"
    store = pf.Store(url)
    assert not store.is_local
    yield store
    if request.param == "memory":
        store.backend.fs.rm(store.backend.prefix, recursive=True)


def test_pipeline_on_url_store_hits_and_verifies(url_store, calls):
    p = pf.Pipeline("p")
    p.add("a", S.ramp, S.RampConfig(n=60_000))
    p.add("b", S.square, x="a")
    p.add("f", S.stream_field, S.FieldConfig(rows=64, cols=16, chunk_rows=16, reverse=True))
    p.add("s", S.block_sums, field="f.field")
    res = p.run(store=url_store)
    assert res.ok, res.errors
    np.testing.assert_array_equal(res["b"], np.arange(60_000.0) ** 2)
    assert res.digest("f.field") == pf.digest(S.field_block((slice(0, 64), slice(0, 16)), 16))
    again = p.run(store=url_store)
    assert sorted(again.hits) == ["a", "b", "f", "s"] and calls["ramp"] == 1
    # a fresh Store object on the same URL sees the same entries
    fresh = pf.Store(url_store.location)
    np.testing.assert_array_equal(fresh.get_value(res.entries("b")["value"]), res["b"])
    report = url_store.verify()
    assert report.ok and report.objects_checked == 3 and report.records_checked == 4
    stats = url_store.stats()
    assert stats.by_kind["objects"].entries == 3 and stats.by_kind["manifests"].entries == 2


def test_url_store_detects_corruption(url_store):
    value = np.arange(50_000, dtype=np.int32)
    entry = url_store.put_value(value)
    fs, base = url_store.backend.fs, url_store.backend.prefix
    chunk = f"{base}/{url_store.object_rel(entry.digest)}/c/0"
    data = bytearray(fs.cat_file(chunk))
    data[99] ^= 1
    fs.pipe_file(chunk, bytes(data))
    with pytest.raises(pf.CorruptObjectError, match="the next run recomputes it"):
        url_store.get_value(entry)
    # the read itself quarantined it: nothing damaged is left to find
    assert not url_store.has_object(entry.digest)
    assert url_store.verify().ok


def test_marker_last_publication(url_store):
    """Without the zarr.json marker an object does not exist, whatever data files are there."""
    value = np.arange(40_000.0)
    d = pf.digest(value)
    fs, base = url_store.backend.fs, url_store.backend.prefix
    fs.makedirs(f"{base}/{url_store.object_rel(d)}/c", exist_ok=True)
    fs.pipe_file(f"{base}/{url_store.object_rel(d)}/c/0", b"partial")
    assert not url_store.has_object(d)
    entry = url_store.put_value(value)
    assert url_store.has_object(d)
    np.testing.assert_array_equal(url_store.get_value(entry), value)


def test_gc_on_url_store(url_store):
    p = pf.Pipeline("p")
    p.add("a", S.ramp, S.RampConfig(n=70_000))
    res = p.run(store=url_store)
    report = url_store.gc(max_bytes=0, keep_manifests=None)
    assert report.removed_actions and report.removed_objects == [res.digest("a")]
    assert not url_store.has_object(res.digest("a"))
    assert p.run(store=url_store).misses == ["a"]
