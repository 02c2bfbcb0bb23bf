"""Action records in SQLite (``actions.sqlite``): layout stamp, real processes, SIGKILL, fork."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import signal
import sqlite3

import blake3
import numpy as np
import pytest

import physflow as pf
from physflow.artifacts.errors import StoreError
from physflow.core.records import ActionRecord, decode_record
from tests.conftest import RawRecords

from . import store_stages as S


def _key(i: int) -> str:
    return "b3:" + blake3.blake3(f"record {i}".encode()).hexdigest()


def _record(store: pf.Store, i: int, writer: int = 0) -> ActionRecord:
    """A genuine record for key ``i`` whose inline value says which key it belongs to."""
    entry = store.put_value({"i": i, "payload": "x" * (i % 300)})
    return ActionRecord(
        key=_key(i),
        stage="tests.record",
        fingerprint="f",
        outputs={"value": entry},
        created=float(writer),
        node_id=f"n{i}",
    )


def _check(store: pf.Store, i: int) -> None:
    record = store.get_action(_key(i))
    assert record is not None, i
    assert store.get_value(record.outputs["value"]) == {"i": i, "payload": "x" * (i % 300)}


def _stamp(root) -> dict:
    return json.loads((root / "store.json").read_text())


# -- layout stamp ------------------------------------------------------------------------------


def test_new_local_store_uses_sqlite_and_stamps_it(tmp_path):
    store = pf.Store(tmp_path / "s")
    assert store.actions_layout == "sqlite"
    assert _stamp(store.root) == {"format": 1, "actions": "sqlite", "hash_format": 1}
    assert (store.root / "actions.sqlite").is_file() and not (store.root / "actions").exists()
    store.put_action(_record(store, 1))
    _check(pf.Store(tmp_path / "s"), 1)  # another opener agrees
    _check(pickle.loads(pickle.dumps(store)), 1)  # as workers receive it
    with sqlite3.connect(store.root / "actions.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM actions").fetchone() == (1,)


def test_files_layout_on_request(tmp_path):
    store = pf.Store(tmp_path / "s", actions="files")
    assert _stamp(store.root)["actions"] == "files"
    store.put_action(_record(store, 2))
    assert store.action_path(_key(2)).is_file()
    assert not (store.root / "actions.sqlite").exists()
    reopened = pf.Store(tmp_path / "s")  # no actions=: the stamp decides
    assert reopened.actions_layout == "files"
    _check(reopened, 2)


def test_store_made_before_stamps_keeps_its_record_files(tmp_path):
    old = pf.Store(tmp_path / "s", actions="files")
    for i in range(5):
        old.put_action(_record(old, i))
    (old.root / "store.json").unlink()  # as an earlier version left it
    store = pf.Store(tmp_path / "s")
    assert store.actions_layout == "files"
    assert _stamp(store.root)["actions"] == "files"  # stamped, so it stays so
    for i in range(5):
        _check(store, i)
    assert not (store.root / "actions.sqlite").exists()
    assert sorted(store.actions.list_keys()) == sorted(_key(i) for i in range(5))


def test_asking_for_another_layout_is_a_clear_error(tmp_path):
    pf.Store(tmp_path / "s")
    with pytest.raises(StoreError) as err:
        pf.Store(tmp_path / "s", actions="files")
    message = str(err.value)
    assert str(tmp_path / "s") in message and "store.json" in message
    assert "'sqlite'" in message and "without actions=" in message
    pf.Store(tmp_path / "f", actions="files")
    with pytest.raises(StoreError, match="'files'"):
        pf.Store(tmp_path / "f", actions="sqlite")
    with pytest.raises(ValueError, match="expected one of"):
        pf.Store(tmp_path / "x", actions="lmdb")


def test_url_stores_keep_record_files(tmp_path):
    memory = pf.Store("memory://action-db-test")
    assert memory.actions_layout == "files"
    memory.put_action(_record(memory, 3))
    _check(memory, 3)
    # a SQLite store opened through a URL would silently miss every record: refused instead
    local = pf.Store(tmp_path / "s")
    with pytest.raises(StoreError, match="local path"):
        pf.Store(f"file://{local.root}")
    with pytest.raises(StoreError, match="need a local directory"):
        pf.Store("memory://action-db-test", actions="sqlite")


# -- real processes ----------------------------------------------------------------------------


def _writer(root: str, writer: int, n: int, ready, go) -> None:
    store = pf.Store(root)
    ready.set()
    go.wait()
    for step in range(n):
        # overlapping keys: writer w writes keys w*n/2 .. w*n/2 + n, shared with its neighbour
        i = writer * n // 2 + step
        store.put_action(_record(store, i, writer))
        # read a key a neighbour writes too: absent or a complete, correct record, never torn
        j = i + n // 2
        other = store.get_action(_key(j))
        if other is not None:
            assert store.get_value(other.outputs["value"]) == {"i": j, "payload": "x" * (j % 300)}
        _check(store, i)


def test_processes_write_and_read_one_store_concurrently(tmp_path):
    ctx = mp.get_context("spawn")
    root = str(tmp_path / "s")
    writers, n = 4, 150
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(writers)]
    procs = [ctx.Process(target=_writer, args=(root, w, n, readies[w], go)) for w in range(writers)]
    for proc in procs:  # they also race to create the store: one stamp, one database
        proc.start()
    for ready in readies:
        assert ready.wait(60)
    go.set()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    store = pf.Store(root)
    assert store.actions_layout == "sqlite"
    expected = {_key(i) for i in range((writers + 1) * n // 2)}
    assert set(store.actions.list_keys()) == expected
    for i in range((writers + 1) * n // 2):
        _check(store, i)
    with sqlite3.connect(store.root / "actions.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert store.verify().ok


def _put_forever(root: str, start: int, progress) -> None:
    store = pf.Store(root)
    i = start
    while True:
        store.put_action(_record(store, i))
        if i - start == 50:
            progress.set()  # killed right after this, in the middle of later puts
        i += 1


def test_sigkill_during_puts_leaves_only_complete_records(tmp_path):
    ctx = mp.get_context("fork")
    root = str(tmp_path / "s")
    pf.Store(root)
    for round_ in range(3):
        progress = ctx.Event()
        proc = ctx.Process(target=_put_forever, args=(root, round_ * 100_000, progress))
        proc.start()
        assert progress.wait(60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL
    store = pf.Store(root)
    with sqlite3.connect(store.root / "actions.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    raw = RawRecords(store)
    keys = raw.key_list()
    assert len(keys) >= 3 * 51
    for h in keys:
        record = decode_record(raw.read(h))  # checksum verified: complete bytes only
        assert record.key == "b3:" + h
        _check(store, int(record.node_id[1:]))
    assert store.verify().ok


def _child_uses_inherited_store(store: pf.Store, inherited_id: int, result) -> None:
    _check(store, 10)  # written by the parent before the fork
    store.put_action(_record(store, 11))
    result.put(id(store.records.conn()) != inherited_id)


def test_store_survives_fork(tmp_path):
    store = pf.Store(tmp_path / "s")
    store.put_action(_record(store, 10))
    _check(store, 10)
    parent_conn = store.records.conn()
    ctx = mp.get_context("fork")
    result = ctx.Queue()
    child = ctx.Process(target=_child_uses_inherited_store, args=(store, id(parent_conn), result))
    child.start()
    fresh_connection = result.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0 and fresh_connection
    assert store.records.conn() is parent_conn  # the parent keeps its own connection
    _check(store, 11)  # the child's record, seen by the parent
    store.put_action(_record(store, 12))
    _check(pf.Store(tmp_path / "s"), 12)
    with sqlite3.connect(store.root / "actions.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- executors ---------------------------------------------------------------------------------


def _fanout(n: int) -> pf.Pipeline:
    p = pf.Pipeline("fan")
    for i in range(n):
        p.add(f"r{i}", S.ramp, S.RampConfig(n=100 + i))
        p.add(f"s{i}", S.square, x=f"r{i}")
    return p


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_executor_run_on_sqlite_store(tmp_path, calls, executor):
    store = pf.Store(tmp_path / "s")
    p = _fanout(12)
    res = p.run(store=store, executor=executor, workers=3)
    assert res.ok and len(res.misses) == 24
    if executor == "threads":  # the stages ran in this process: counted here
        assert calls == {"ramp": 12, "square": 12}
    for node, state in res.outcome.states.items():
        record = store.get_action(state.key)
        assert record is not None and record.outputs == state.outputs, node
    assert len(list(store.actions.list_keys())) == 24
    # a larger plan (no whole-run shortcut applies): its first 24 nodes are record hits
    bigger = _fanout(13).run(store=pf.Store(tmp_path / "s"), executor="serial")
    assert sorted(bigger.misses) == ["r12", "s12"] and len(bigger.hits) == 24
    np.testing.assert_array_equal(bigger["s5"], np.arange(105, dtype=float) ** 2)
