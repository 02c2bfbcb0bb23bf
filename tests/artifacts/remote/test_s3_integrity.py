"""Byte flips on the server are detected and never served; a corrupted local tier is detected
and refetched; the tier stays within its byte budget."""

from __future__ import annotations

import numpy as np
import pytest

import physflow as pf

from .. import store_stages as S


def _chunk_keys(bucket, store, digest):
    return [k for k in bucket.keys(f"store/{store.object_rel(digest)}/") if "/c/" in k]


def test_byte_flip_on_server_is_detected_never_served(bucket, tmp_path, calls):
    p = pf.Pipeline("flip")
    p.add("a", S.ramp, S.RampConfig(n=80_000))
    p.add("b", S.square, x="a")
    res = p.run(store=bucket.store())
    good = res["b"].copy()
    chunk = _chunk_keys(bucket, bucket.store(), res.digest("a"))[0]
    bucket.flip(chunk, at=12345)
    # read directly: an error naming the object, no value
    fresh = bucket.store(cache_dir=tmp_path / "tier")
    with pytest.raises(pf.CorruptObjectError) as err:
        fresh.get_value(res.entries("a")["value"])
    assert err.value.digest == res.digest("a")
    # the damaged bytes were fetched, but never became a value; the tier did not keep a
    # "verified" copy of them either (it only verifies what it was given)
    # a run that needs 'a' quarantines it and recomputes it; b is recomputed from the good a
    p2 = pf.Pipeline("flip")
    p2.add("a", S.ramp, S.RampConfig(n=80_000))
    p2.add("b", S.square, x="a")
    p2.add("c", S.total, x="a")
    again = p2.run(store=fresh)
    assert again.ok, again.errors
    np.testing.assert_array_equal(again["b"], good)
    assert again["c"] == float(np.arange(80_000.0).sum())
    assert calls["ramp"] == 2  # recomputed once, never served damaged
    report = bucket.store().verify()
    assert report.ok, report


def test_verify_finds_flips_in_markers_and_records(bucket):
    store = bucket.store()
    entry = store.put_value(np.arange(30_000, dtype=np.float32))
    from physflow.core.records import ActionRecord

    store.put_action(
        ActionRecord(
            key="b3:" + "ef" * 32, stage="s", fingerprint="f", outputs={"value": entry}, created=0
        )
    )
    bucket.flip(f"store/{store.object_rel(entry.digest)}/zarr.json", at=40)
    report = bucket.store().verify()
    assert list(report.bad_objects) == [entry.digest]
    assert report.records_deleted
    assert not bucket.store().has_object(entry.digest)
    assert bucket.store().get_action("b3:" + "ef" * 32) is None


def test_corrupted_local_tier_is_detected_and_refetched(bucket, tmp_path):
    value = np.random.default_rng(3).standard_normal(200_000)
    entry = bucket.store().put_value(value)
    tier = tmp_path / "tier"
    store = bucket.store(cache_dir=tier)
    np.testing.assert_array_equal(store.get_value(entry), value)  # fills the tier
    files = [p for p in (tier / "data").rglob("*") if p.is_file()]
    chunk = next(p for p in files if "/c/" in str(p))
    data = bytearray(chunk.read_bytes())
    data[1000] ^= 0x40  # bit rot in the local copy
    chunk.write_bytes(bytes(data))
    reader = bucket.store(cache_dir=tier)
    np.testing.assert_array_equal(reader.get_value(entry), value)
    assert reader.backend.refetched == 1
    assert bucket.store().verify().ok  # the server's copy was never touched
    # the refetched copy is whole again: served from the tier without another refetch
    third = bucket.store(cache_dir=tier)
    np.testing.assert_array_equal(third.get_value(entry), value)
    assert third.backend.refetched == 0
    # a truncated record in the tier is a refetch too, not a miss
    from physflow.core.records import ActionRecord

    key = "b3:" + "12" * 32
    reader.put_action(
        ActionRecord(key=key, stage="s", fingerprint="f", outputs={"value": entry}, created=0)
    )
    rec = tier / "data" / "actions" / "12" / ("12" * 32)
    rec.write_bytes(rec.read_bytes()[:-3])
    again = bucket.store(cache_dir=tier)
    assert again.get_action(key) is not None and again.backend.refetched == 1


def test_hits_are_served_by_the_tier(bucket, tmp_path, calls):
    """A warm re-run on another Store with the same tier reads no record or object remotely
    (only the pipeline's recent-plans list, which is mutable, and its new manifest)."""
    p = pf.Pipeline("warm")
    for i in range(5):
        p.add(f"r{i}", S.ramp, S.RampConfig(n=10_000 + i))
    tier = tmp_path / "tier"
    assert p.run(store=bucket.store(cache_dir=tier)).ok
    store = bucket.store(cache_dir=tier)
    seen: list[str] = []
    client = store.backend.client
    for name in ("get", "get_tagged", "head"):
        real = getattr(client, name)

        def spy(path, _real=real, **kw):
            seen.append(path)
            return _real(path, **kw)

        setattr(client, name, spy)
    res = p.run(store=store)
    assert len(res.hits) == 5 and calls["ramp"] == 5
    assert not [s for s in seen if s.startswith(("actions/", "objects/"))], seen


def test_tier_stays_within_its_budget(bucket, tmp_path):
    tier = tmp_path / "tier"
    budget = 3 << 20
    store = bucket.store(cache_dir=tier, cache_bytes=budget)
    values = [np.full(100_000, i, dtype=np.float64) for i in range(12)]  # 800 KB each
    entries = [store.put_value(v) for v in values]
    assert store.backend.tier_bytes() <= budget
    reader = bucket.store(cache_dir=tier, cache_bytes=budget)
    for v, e in zip(values, entries):  # evicted ones come back from the server
        np.testing.assert_array_equal(reader.get_value(e), v)
    assert reader.backend.tier_bytes() <= budget
    assert not list((tier / "tmp").iterdir())


def test_tier_only_keeps_immutable_entries(bucket, tmp_path):
    tier = tmp_path / "tier"
    store = bucket.store(cache_dir=tier)
    p = pf.Pipeline("named")
    p.add("r", S.ramp, S.RampConfig(n=20_000))
    p.run(store=store)
    kept = {
        str(q.relative_to(tier / "data")).split("/")[0]
        for q in (tier / "data").rglob("*")
        if q.is_file()
    }
    assert kept <= {"objects", "actions", "plans", "manifests", "store.json"}
    assert not (tier / "data" / "plans" / "latest").exists()
    assert (tier / "data" / "store.json").exists()  # the layout stamp is immutable: kept
