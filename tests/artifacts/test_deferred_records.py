"""Record writes of stages run in the runner's process are committed in batches (SQLite)."""

from __future__ import annotations

import multiprocessing as mp
import signal
import sqlite3
import threading
import time

import pytest

import physflow as pf
import physflow.core.records
from physflow.artifacts import records_sqlite as action_db
from physflow.core.records import ActionRecord

from . import store_stages as S


def _committed(store: pf.Store) -> int:
    """Records another connection can see (what other processes see)."""
    with sqlite3.connect(store.root / "actions.sqlite") as db:
        return db.execute("SELECT count(*) FROM actions").fetchone()[0]


def _record(store: pf.Store, i: int) -> ActionRecord:
    entry = store.put_value(i)
    return ActionRecord(
        key=f"b3:{i:064x}", stage="t", fingerprint="f", outputs={"value": entry}, created=0.0
    )


@pytest.fixture
def slow_flusher(monkeypatch):
    """A window long enough that nothing is committed before the block ends."""
    monkeypatch.setattr(action_db, "DEFER_WINDOW_S", 60.0)


def test_deferred_record_is_served_at_once_and_committed_on_exit(tmp_path, slow_flusher):
    store = pf.Store(tmp_path / "s")
    with store.deferred_action_writes():
        store.put_action(_record(store, 1))
        assert _committed(store) == 0
        assert store.get_action("b3:" + f"{1:064x}") is not None  # this process sees it
        with store.deferred_action_writes():  # nested (a run inside a stage): same flusher
            store.put_action(_record(store, 2))
            assert _committed(store) == 0
        assert _committed(store) == 2  # every block leaves with what is pending committed
        store.put_action(_record(store, 3))
        assert _committed(store) == 2
    assert _committed(store) == 3
    assert pf.Store(store.root).get_action("b3:" + f"{2:064x}").outputs["value"].tree


def test_flusher_commits_within_the_window(tmp_path):
    store = pf.Store(tmp_path / "s")
    with store.deferred_action_writes():
        store.put_action(_record(store, 1))
        deadline = time.monotonic() + 30  # generous: the window is 20 ms
        while _committed(store) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)  # the flusher thread commits without the block ending
        assert _committed(store) == 1
    assert not any(t.name == "physflow-records" for t in threading.enumerate())


def test_serial_and_threads_runs_commit_every_record(tmp_path):
    for executor in ("serial", "threads"):
        store = pf.Store(tmp_path / executor)
        res = S.chain(40).run(store=store, executor=executor)
        assert res.ok and len(res.misses) == 40
        assert _committed(store) == 40  # all committed when run() returns
        assert S.chain(40).run(store=pf.Store(store.root)).hits == res.misses


def test_a_crash_loses_at_most_uncommitted_records_and_never_corrupts(tmp_path):
    root = str(tmp_path / "s")
    pf.Store(root)
    ctx = mp.get_context("spawn")
    # 2 ms per node: the crash comes ~0.5 s in, after many 20 ms batches were committed
    proc = ctx.Process(target=S.run_chain, args=(root, 300, 250, 0.002))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL
    store = pf.Store(root)
    with sqlite3.connect(store.root / "actions.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    committed = _committed(store)
    assert 0 < committed <= 250  # node 250 died before its record
    assert store.verify().ok
    res = S.chain(300, pause_s=0.002).run(store=store)
    assert res.ok and res["s299"] == sum(range(300))
    # batches commit in order and whole: what survived is a prefix of the chain, reused as is
    assert res.hits == [f"s{i}" for i in range(committed)]


def test_runs_in_threads_sharing_one_store_commit_all_and_stop_the_flusher(tmp_path):
    """Harness-style: several threads run pipelines on one Store object at once."""
    store = pf.Store(tmp_path / "s")
    results: dict[int, bool] = {}

    def run(i: int) -> None:
        p = S.chain(30)
        p.add("extra", S.step, S.StepConfig(index=1000 + i), x="s29")
        results[i] = p.run(store=store).ok

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {0: True, 1: True, 2: True, 3: True}
    assert _committed(store) == 30 + 4
    assert not any(t.name == "physflow-records" for t in threading.enumerate())
    after = S.chain(31).run(store=store)  # the store is back to a clean state
    assert after.misses == ["s30"] and _committed(store) == 30 + 4 + 1


_FORK_SCENARIO = """
import multiprocessing as mp, sqlite3, sys
import physflow as pf
import physflow.core.records
from physflow.artifacts import records_sqlite as action_db
from tests.artifacts import store_stages as S

def child(store):
    S.chain(20).run(store=store, write_manifest=False)

def committed(store):
    with sqlite3.connect(store.root / "actions.sqlite") as db:
        return db.execute("SELECT count(*) FROM actions").fetchone()[0]

if __name__ == "__main__":
    action_db.DEFER_WINDOW_S = 60.0  # nothing of the parent's is committed before the block ends
    store = pf.Store(sys.argv[1])
    with store.deferred_action_writes():
        S.chain(1).run(store=store, write_manifest=False)  # nested block: commits s0 on exit
        entry = store.put_value(1)
        rec = pf.core.records.ActionRecord(
            key="b3:" + "1" * 64, stage="t", fingerprint="f", outputs={"value": entry}, created=0.0
        )
        store.put_action(rec)  # pending in the parent when it forks
        proc = mp.get_context("fork").Process(target=child, args=(store,))
        proc.start()
        proc.join(120)
        assert proc.exitcode == 0, proc.exitcode
        assert committed(store) == 20, committed(store)  # the child's own run, all committed
    assert committed(store) == 21, committed(store)
    print("ok")
"""


def test_child_forked_inside_a_deferred_block_commits_its_own_records(tmp_path):
    """Run in a fresh interpreter: forking this test process (threads of JAX, dask) is unsafe."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SCENARIO, str(tmp_path / "s")],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
