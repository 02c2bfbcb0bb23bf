"""An exception in the middle of a write leaves no visible object or record."""

from __future__ import annotations

import os

import numpy as np
import pytest

import physflow as pf
from physflow.artifacts import arrays
from tests.conftest import RawRecords


def _visible(store):
    objects = [p for p in store.objects_dir.rglob("*") if p.is_file()]
    return objects, RawRecords(store).key_list()


def test_exception_mid_object_write_leaves_nothing_visible(tmp_path, monkeypatch):
    store = pf.Store(tmp_path / "s")

    @pf.stage
    def big() -> np.ndarray:
        return np.arange(100_000, dtype=np.float64)

    real_write = arrays.write_array_dir

    def write_then_fail(target, array, digest, data_hash):
        real_write(target, array, digest, data_hash)  # the bytes are on disk in tmp/ ...
        raise OSError("disk full")  # ... and then the write fails

    monkeypatch.setattr(arrays, "write_array_dir", write_then_fail)
    p = pf.Pipeline("p")
    p.add("big", big)
    res = p.run(store=store)
    assert res.failed == ["big"] and "disk full" in res.errors["big"]
    assert _visible(store) == ([], [])
    assert list(store.tmp_dir.iterdir()) == []

    monkeypatch.setattr(arrays, "write_array_dir", real_write)
    res = p.run(store=store)
    assert res.misses == ["big"]
    np.testing.assert_array_equal(res["big"], np.arange(100_000, dtype=np.float64))


def test_exception_writing_record_leaves_no_record(tmp_path, monkeypatch, actions_layout):
    """The record write itself fails (files: the rename; SQLite: the INSERT aborts inside the
    database, raised by a trigger on the real file): no record, and the next run recomputes."""
    import sqlite3

    store = pf.Store(tmp_path / "s", actions=actions_layout)

    @pf.stage
    def small() -> int:
        return 3

    def failing_replace(src, dst):
        raise OSError("interrupted")

    p = pf.Pipeline("p")
    p.add("n", small)
    fail = (
        "CREATE TRIGGER fail BEFORE INSERT ON actions BEGIN SELECT RAISE(ABORT, 'interrupted'); END"
    )
    with monkeypatch.context() as m:
        if actions_layout == "files":
            m.setattr(os, "replace", failing_replace)
        else:
            with sqlite3.connect(store.root / "actions.sqlite", isolation_level=None) as db:
                db.execute(fail)
            # records of stages run in the runner's process are committed in batches: a
            # failing commit fails the run, naming the store and the cause
            with pytest.raises(OSError, match=r"could not record results in .*interrupted"):
                p.run(store=store, write_manifest=False)
        if actions_layout == "files":
            res = p.run(store=store, write_manifest=False)
            assert res.failed == ["n"] and "interrupted" in res.errors["n"]
    if actions_layout == "sqlite":
        with sqlite3.connect(store.root / "actions.sqlite", isolation_level=None) as db:
            db.execute("DROP TRIGGER fail")
        again = p.run(store=store)  # the failed batch left nothing behind
        assert again.misses == ["n"] and store.get_action(again.outcome.states["n"].key)
        return
    assert _visible(store)[1] == []
    assert p.run(store=store).misses == ["n"]


def test_direct_read_of_corrupted_array_raises(tmp_path):
    store = pf.Store(tmp_path / "s")
    entry = store.put_value(np.arange(50_000, dtype=np.int32))
    chunk = next(p for p in store.object_path(entry.digest).rglob("c/*") if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[1234] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(pf.CorruptObjectError, match=entry.digest):
        store.get_value(entry)


def test_damaged_record_that_still_decodes_is_a_miss(tmp_path, actions_layout):
    """A flipped bit in an inline float keeps the msgpack valid; the checksum catches it."""
    import struct

    store = pf.Store(tmp_path / "s", actions=actions_layout)
    raw = RawRecords(store)

    @pf.stage
    def third() -> float:
        return 1 / 3

    p = pf.Pipeline("p")
    p.add("t", third)
    first = p.run(store=store)
    key = first.outcome.states["t"].key
    data = bytearray(raw.read(key))
    packed = b"\xcb" + struct.pack(">d", 1 / 3)  # msgpack float64
    at = data.index(packed) + 8
    data[at] ^= 0x01  # last mantissa byte: still a valid float, a different value
    raw.write(key, bytes(data))
    assert store.get_action(key) is None
    replayed = p.run(store=store)  # the plan record keeps an intact copy of the record
    assert replayed.outcome.replayed and replayed["t"] == 1 / 3
    store.drop_plans()  # the per-node path must not serve the damaged record
    again = p.run(store=store)
    assert again.misses == ["t"]
    assert again["t"] == 1 / 3
