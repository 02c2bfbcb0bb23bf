"""stats() and gc(): LRU eviction, kept manifests, dry run, temp leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from tests.conftest import RawRecords

from . import store_stages as S


@pytest.fixture
def store(tmp_path, actions_layout):
    """Every gc test runs on both action-record layouts (SQLite and one file per record)."""
    return pf.Store(tmp_path / "store", actions=actions_layout)


def _run(store, seed, mib=1):
    p = pf.Pipeline(f"p{seed}")
    p.add("big", S.big_random, S.BigConfig(seed=seed, mib=mib))
    p.add("mean", S.mean_of, x="big")
    res = p.run(store=store)
    assert res.ok, res.errors
    return res


def _age(store, res, node, seconds):
    """Make a record look last used ``seconds`` ago: the LRU clock is the newer of the record's
    write/touch time and the finish time of the newest manifest listing its key."""
    t = time.time() - seconds
    RawRecords(store).set_time(res.outcome.states[node].key, t)
    manifest = json.loads(Path(res.manifest_path).read_text())
    manifest["started"] = manifest["finished"] = t
    with open(res.manifest_path, "w") as fh:
        json.dump(manifest, fh)
    os.utime(res.manifest_path, (t, t))


def test_stats_counts_by_kind(store):
    res = _run(store, 1)
    s = store.stats()
    assert s.by_kind["objects"].entries == 1
    assert s.by_kind["objects"].bytes >= 1 << 20
    assert s.by_kind["actions"].entries == 2
    assert s.by_kind["manifests"].entries == 1
    assert s.by_kind["plans"].entries == 1 and s.by_kind["plans"].bytes > 0
    assert s.entries == 5 and s.bytes == sum(k.bytes for k in s.by_kind.values())
    assert res.manifest_path is not None


def test_gc_evicts_least_recently_used_first(store):
    runs = [_run(store, seed) for seed in range(4)]
    for i, res in enumerate(runs):  # run 0 oldest ... run 3 newest
        _age(store, res, "big", 1000 - i * 100)
        _age(store, res, "mean", 1000 - i * 100)
    # a hit refreshes run 0: it becomes the most recently used
    again = _run(store, 0)
    assert again.hits == ["big", "mean"]
    size = store.stats().bytes
    report = store.gc(max_bytes=size - (1 << 20), keep_manifests=None)
    assert not report.dry_run
    evicted = {res.digest("big") for res in runs if not store.has_object(res.digest("big"))}
    assert evicted == {runs[1].digest("big")}  # the least recently used one, only
    assert report.bytes_after <= size - (1 << 20)
    assert store.verify().ok
    assert _run(store, 1).misses[0] == "big"


def test_gc_never_deletes_what_kept_manifests_reference(store):
    old = _run(store, 10)
    new = _run(store, 11)
    for res in (old, new):
        _age(store, res, "big", 5000)
        _age(store, res, "mean", 5000)
    # keep only the manifest of `old`: its objects survive even though its records go
    report = store.gc(older_than=60, keep_manifests=[old.manifest.run_id])
    assert len(report.removed_actions) == 4
    assert store.has_object(old.digest("big"))
    assert not store.has_object(new.digest("big"))
    assert report.protected_objects == 1
    np.testing.assert_array_equal(
        store.get_value(old.entries("big")["value"]),
        np.random.default_rng(10).standard_normal((1 << 20) // 8),
    )


def test_gc_keeps_newest_manifests_by_count(store):
    runs = [_run(store, seed) for seed in (20, 21, 22)]
    for i, res in enumerate(runs):
        t = time.time() - 1000 + i * 10
        os.utime(res.manifest_path, (t, t))
        _age(store, res, "big", 5000)
        _age(store, res, "mean", 5000)
    store.gc(older_than=60, keep_manifests=2)
    kept = [store.has_object(res.digest("big")) for res in runs]
    assert kept == [False, True, True]


def test_gc_dry_run_changes_nothing(store):
    res = _run(store, 30)
    _age(store, res, "big", 5000)
    before = sorted(p for p in store.root.rglob("*"))
    records = RawRecords(store).key_list()
    report = store.gc(older_than=60, keep_manifests=None, dry_run=True)
    assert report.dry_run and report.removed_actions and report.removed_objects
    assert sorted(p for p in store.root.rglob("*")) == before
    assert RawRecords(store).key_list() == records and len(records) == 2


def test_gc_returns_record_space_to_the_filesystem(tmp_path):
    """On SQLite, deleted records' pages go back to the filesystem (incremental vacuum + WAL
    checkpoint), so gc shrinks the database files, not just the row count."""
    store = pf.Store(tmp_path / "s", actions="sqlite")
    p = pf.Pipeline("many")
    for i in range(300):
        p.add(f"n{i}", S.ramp, S.RampConfig(n=1500, scale=float(i)))  # ~12 KiB inline each
    res = p.run(store=store, write_manifest=False)
    assert res.ok
    entries, before = store.actions.stats()
    assert entries == 300 and before > 300 * 12_000
    report = store.gc(max_bytes=0, keep_manifests=None)
    assert len(report.removed_actions) == 300
    entries, after = store.actions.stats()
    assert entries == 0 and after < before / 10
    assert all(store.get_action(state.key) is None for state in res.outcome.states.values())
    assert store.verify().ok


def test_gc_removes_leftovers_of_dead_writers_only(store):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    dead_entry = store.tmp_dir / f"{dead_pid}-deadbeef"
    dead_entry.mkdir()
    (dead_entry / "c").write_bytes(b"partial")
    live_entry = store.tmp_dir / f"{os.getpid()}-cafe"
    live_entry.mkdir()
    old_entry = store.tmp_dir / f"{os.getpid()}-old.rec"
    old_entry.write_bytes(b"x")
    t = time.time() - 7200
    os.utime(old_entry, (t, t))
    report = store.gc(keep_manifests=None)
    assert sorted(report.removed_tmp) == sorted([dead_entry.name, old_entry.name])
    assert live_entry.exists() and not dead_entry.exists() and not old_entry.exists()


def test_gc_removes_orphan_objects_after_grace(store):
    entry = store.put_value(np.arange(100_000.0))  # an object no record references
    assert store.gc(keep_manifests=None).removed_objects == []  # within the grace period
    report = store.gc(keep_manifests=None, tmp_grace_s=0.0)
    assert report.removed_objects == [entry.digest]
    assert not store.has_object(entry.digest)
