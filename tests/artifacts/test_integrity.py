"""Corrupted bytes are detected and never served; verify() reports and quarantines them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.artifacts.lazy import open_lazy

from . import store_stages as S


def _flip_byte(path: Path, offset: int = 1234) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x5A
    path.write_bytes(bytes(data))


def _chunks(store, digest):
    return sorted(
        p for p in store.object_path(digest).rglob("*") if p.is_file() and p.name != "zarr.json"
    )


def _store_variants(tmp_path):
    arr = np.random.default_rng(0).standard_normal((512, 64))
    single = pf.Store(tmp_path / "single")
    squeezed = pf.Store(tmp_path / "zstd", compress=True)
    return [(single, arr), (squeezed, np.round(arr, 1))]


def test_corrupted_byte_is_never_served(tmp_path):
    for store, value in _store_variants(tmp_path):
        entry = store.put_value(value)
        chunk = _chunks(store, entry.digest)[-1]
        _flip_byte(chunk)
        with pytest.raises(pf.CorruptObjectError) as info:
            store.get_value(entry)
        assert info.value.digest == entry.digest and entry.digest in str(info.value)
        assert "the next run recomputes it" in str(info.value)
        # the read quarantined it: later reads find it gone, never a wrong value
        with pytest.raises((pf.CorruptObjectError, pf.MissingObjectError)):
            open_lazy(store, entry).sum().compute()


def test_corrupted_streamed_chunk_detected_lazily_only_where_read(store):
    p = pf.Pipeline("p")
    p.add("f", S.stream_field, S.FieldConfig(rows=100, cols=10, chunk_rows=25))
    res = p.run(store=store)
    entry = res.entries("f")["field"]
    chunk = store.object_path(entry.digest) / "c" / "2" / "0"
    _flip_byte(chunk, 17)
    lazy = open_lazy(store, entry)
    np.testing.assert_array_equal(
        lazy[:25].compute(), S.field_block((slice(0, 25), slice(0, 10)), 10)
    )
    with pytest.raises(pf.CorruptObjectError, match="chunk c/2/0"):
        lazy[50:75].compute()
    with pytest.raises((pf.CorruptObjectError, pf.MissingObjectError)):
        store.get_value(entry)
    assert p.run(store=store).misses == ["f"]  # healed: the next run recomputes it


def test_truncated_or_missing_chunk_and_bad_metadata(store):
    a = store.put_value(np.arange(30_000, dtype=np.float64))
    b = store.put_value(np.arange(30_000, dtype=np.int64))
    c = store.put_value(np.arange(30_000, dtype=np.int32))
    chunk_a = _chunks(store, a.digest)[0]
    chunk_a.write_bytes(chunk_a.read_bytes()[:-8])
    _chunks(store, b.digest)[0].unlink()
    meta_c = store.object_path(c.digest) / "zarr.json"
    meta = json.loads(meta_c.read_text())
    meta["shape"] = [29_999]
    meta_c.write_text(json.dumps(meta))
    for entry in (a, b, c):
        with pytest.raises(pf.CorruptObjectError):
            store.get_value(entry)


def test_corrupted_xarray_variable_detected(store):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset({"v": (("t",), np.arange(50_000.0))}, coords={"t": np.arange(50_000)})
    entry = store.put_value(ds)
    _flip_byte(store.object_path(entry.digest) / "v" / "c" / "0")
    back = store.get_value(entry)  # lazily backed: nothing read yet
    with pytest.raises(pf.CorruptObjectError):
        back["v"].values  # noqa: B018


def test_verify_quarantines_bad_objects_and_records_then_rerun_recomputes(store, calls):
    p = pf.Pipeline("p")
    p.add("a", S.ramp, S.RampConfig(n=50_000))
    p.add("b", S.square, x="a")
    p.add("c", S.total, x="b")
    res = p.run(store=store)
    assert res.ok
    good = store.verify()
    assert good.ok and good.objects_checked == 2 and good.records_checked == 3
    bad_digest = res.digest("b")
    _flip_byte(_chunks(store, bad_digest)[0])
    report = store.verify()
    assert not report.ok
    assert list(report.bad_objects) == [bad_digest]
    assert report.quarantined == [bad_digest]
    assert len(report.bad_records) == 1  # the record of "b" referenced it
    assert not store.has_object(bad_digest)
    assert any((store.root / "quarantine").iterdir())
    assert store.verify().ok
    calls.clear()
    again = p.run(store=store)
    assert again.misses == ["b"] and again.hits == ["a", "c"]  # early cut-off for "c"
    np.testing.assert_array_equal(again["b"], np.arange(50_000.0) ** 2)
    assert store.verify().ok


def test_quarantine_deletes_referencing_records(store):
    p = pf.Pipeline("p")
    p.add("a", S.ramp, S.RampConfig(n=40_000))
    p.add("b", S.ramp, S.RampConfig(n=40_000, scale=1.0))  # same key as "a": one record
    res = p.run(store=store)
    d = res.digest("a")
    assert store.quarantine(d) == 1
    assert not store.has_object(d)
    with pytest.raises(pf.MissingObjectError):
        store.get_value(res.entries("a")["value"])
    assert p.run(store=store).misses == ["a"]


def test_unreadable_record_is_a_miss(tmp_path, calls, actions_layout, raw_records):
    store = pf.Store(tmp_path / "store", actions=actions_layout)
    p = pf.Pipeline("p")
    p.add("a", S.ramp, S.RampConfig(n=10))
    res = p.run(store=store)
    key = res.outcome.states["a"].key
    raw = raw_records(store)
    raw.write(key, b"\x00garbage")
    assert store.get_action(key) is None
    assert pf.Store(store.root).get_action(key) is None  # a fresh process view agrees
    report = store.verify(quarantine=False)
    assert list(report.bad_records) == [key] and "undecodable" in report.bad_records[key]
    assert raw.read(key) == b"\x00garbage"  # only reported
    assert not store.verify().ok
    assert raw.read(key) is None  # deleted by verify: the next run recomputes it
    assert p.run(store=store).misses == ["a"]
    assert store.get_action(key).outputs == res.outcome.states["a"].outputs  # rewritten


def test_verify_is_clean_for_every_codec_and_catches_each(tmp_path):
    xr = pytest.importorskip("xarray")
    store = pf.Store(tmp_path / "s", allow_pickle=True)
    squeezed = pf.Store(tmp_path / "s", compress=True)
    values = [
        np.arange(40_000, dtype=">f8"),
        np.array([f"s{i}" for i in range(3000)]),
        b"\x01" * 50_000,
        xr.DataArray(np.ones((100, 50)), dims=("a", "b"), coords={"a": np.arange(100)}),
    ]
    entries = [store.put_value(v) for v in values]
    entries.append(squeezed.put_value(np.round(np.linspace(0, 1, 300_000), 2)))
    entries.append(store.put_value(S.Opaque(3), allow_pickle=True))
    ctx = pf.StageContext(store)
    out = ctx.output_array("x", (30, 20), "c8", chunks=(7, 6))
    for index in reversed(out.chunk_indices()):
        shape = tuple(r.stop - r.start for r in out.region(index))
        out.write_chunk(index, np.full(shape, 1 + 2j, dtype="c8"))
    entries.append(out.close())
    digests = [d for e in entries for d in e.objects]
    report = store.verify()
    assert report.ok and report.objects_checked == len(set(digests)), str(report)
    for d in digests:
        files = [
            p for p in store.object_path(d).rglob("*") if p.is_file() and p.name != "zarr.json"
        ]
        _flip_byte(max(files, key=lambda p: p.stat().st_size), 7)
    report = store.verify()
    assert sorted(report.bad_objects) == sorted(set(digests))
