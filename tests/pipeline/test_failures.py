"""Failures: isolation, retries, resume, dead workers, fail_fast, Ctrl-C, corrupt inputs.

Executions are counted through files the stages append to (they run in other processes);
workers really die (SIGKILL / os._exit), and Ctrl-C is a real SIGINT to a real subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import executor_stages as st  # noqa: E402

import physflow as pf  # noqa: E402

pytestmark = pytest.mark.timeout(120)

LOCAL = ["serial", "threads", "processes"]


@pytest.fixture(params=[*LOCAL, "dask"])
def executor(request):
    if request.param == "dask":
        return request.getfixturevalue("dask_executor")
    return request.param


def runs(log_dir: Path, name: str) -> int:
    path = log_dir / f"{name}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def cfg(log_dir: Path, name: str, **kw) -> st.LogCfg:
    return st.LogCfg(log_dir=str(log_dir), name=name, **kw)


def store_is_consistent(root: Path) -> None:
    """Every action record references only objects that exist and read back intact."""
    store = pf.Store(root)
    from physflow.core.records import decode_record
    from tests.conftest import RawRecords

    raw = RawRecords(store)
    for key in raw.key_list():
        record = decode_record(raw.read(key))
        assert store.has_objects(tuple(record.object_digests)), key
        for entry in record.outputs.values():
            store.get_value(entry)


# -- isolation ------------------------------------------------------------------------------------


def test_failure_skips_descendants_and_keeps_independent_branches(tmp_path, executor):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("iso", seed=0)
    p.add("a", st.counted, cfg(logs, "a", value=1.0))
    p.add("bad", st.boom, cfg(logs, "bad"), x="a")
    p.add("after", st.counted_add, cfg(logs, "after"), x="bad")
    p.add("after2", st.counted_add, cfg(logs, "after2"), x="after")
    p.add("sibling", st.counted_add, cfg(logs, "sibling", value=1.0), x="a")
    p.add("other", st.counted, cfg(logs, "other", value=5.0))
    res = p.run(store=tmp_path / "store", executor=executor, workers=2)

    assert res.failed == ["bad"]
    assert sorted(res.skipped) == ["after", "after2"]
    assert sorted(res.misses) == ["a", "other", "sibling"]
    assert res["sibling"] == 2.0 and res["other"] == 5.0
    assert res.errors["bad"] == "ValueError: boom in bad"
    assert 'raise ValueError(f"boom in {cfg.name}")' in res.tracebacks["bad"]
    assert runs(logs, "bad") == 1 and runs(logs, "after") == 0
    # Nothing from the failed node is recorded.
    store = pf.Store(tmp_path / "store")
    bad_key = res.outcome.states["bad"].key
    assert bad_key is not None and store.get_action(bad_key) is None
    # The manifest on disk says the same.
    manifest = json.loads(Path(res.manifest_path).read_text())
    assert manifest["status"] == "failed" and manifest["failed"] == 1
    nodes = {n["id"]: n for n in manifest["nodes"]}
    assert nodes["bad"]["status"] == "failed"
    assert nodes["bad"]["error"] == "ValueError: boom in bad"
    assert "ValueError: boom in bad" in nodes["bad"]["traceback"]
    assert nodes["after"]["status"] == "skipped"
    assert "upstream node 'bad' failed" in nodes["after"]["error"]
    assert nodes["after2"]["status"] == "skipped"
    with pytest.raises(pf.RunFailedError, match="bad: ValueError: boom"):
        res.raise_on_failure()


# -- retries --------------------------------------------------------------------------------------


def test_retries_recover_and_are_reported(tmp_path, executor):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("retry", seed=0)
    p.add("ok", st.flaky, cfg(logs, "ok", value=3.0, fail_times=2))  # retries=2: 3rd works
    p.add("gives_up", st.flaky, cfg(logs, "gives_up", fail_times=5))
    events: list[pf.NodeEvent] = []
    res = p.run(store=tmp_path / "store", executor=executor, workers=2, progress=events.append)
    assert res.misses == ["ok"] and res["ok"] == 3.0
    assert res.failed == ["gives_up"]
    assert runs(logs, "ok") == 3 and runs(logs, "gives_up") == 3
    assert res.errors["gives_up"] == "RuntimeError: transient failure 3"
    nodes = {n.id: n for n in res.manifest.nodes}
    assert nodes["ok"].attempts == 3 and nodes["gives_up"].attempts == 3
    retries = [(e.uid, e.error) for e in events if e.kind == "retry"]
    assert sorted(retries) == [
        ("gives_up", "RuntimeError: transient failure 1"),
        ("gives_up", "RuntimeError: transient failure 2"),
        ("ok", "RuntimeError: transient failure 1"),
        ("ok", "RuntimeError: transient failure 2"),
    ]


# -- resume ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_rerun_resumes_only_failed_and_never_run_nodes(tmp_path, executor):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "flaky.broken").touch()
    p = pf.Pipeline("resume", seed=0)
    p.add("a", st.counted, cfg(logs, "a", value=1.0))
    p.add("flaky", st.fails_while_marker, cfg(logs, "flaky"), x="a")
    p.add("down", st.counted_add, cfg(logs, "down", value=1.0), x="flaky")
    p.add("side", st.counted_add, cfg(logs, "side", value=10.0), x="a")
    first = p.run(store=tmp_path / "store", executor=executor, workers=2)
    assert first.failed == ["flaky"] and first.skipped == ["down"]

    (logs / "flaky.broken").unlink()  # the outside fault is fixed
    second = p.run(store=tmp_path / "store", executor=executor, workers=2)
    assert second.ok
    assert sorted(second.hits) == ["a", "side"]
    assert sorted(second.misses) == ["down", "flaky"]
    assert second["down"] == 3.0
    assert {n: runs(logs, n) for n in ("a", "flaky", "down", "side")} == {
        "a": 1,
        "flaky": 2,
        "down": 1,
        "side": 1,
    }
    third = p.run(store=tmp_path / "store", executor=executor, workers=2)
    assert len(third.hits) == 4 and not third.misses


# -- dead workers ---------------------------------------------------------------------------------


def test_killed_process_worker_fails_only_its_node(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("kill", seed=0)
    p.add("victim", st.die, cfg(logs, "victim"))
    p.add("after", st.counted_add, cfg(logs, "after"), x="victim")
    p.add("fine", st.touch_done, cfg(logs, "fine", value=1.0))
    p.add("later", st.counted_add, cfg(logs, "later", value=1.0), x="fine")
    p.add("phoenix", st.die_once, cfg(logs, "phoenix", value=7.0))  # retries=1
    events: list[pf.NodeEvent] = []
    res = p.run(store=tmp_path / "store", executor="processes", workers=2, progress=events.append)
    assert res.failed == ["victim"]
    assert "WorkerDied" in res.errors["victim"] and "SIGKILL" in res.errors["victim"]
    assert res.skipped == ["after"]
    assert res["later"] == 2.0
    assert res["phoenix"] == 7.0 and runs(logs, "phoenix") == 2
    assert [e.kind for e in events if e.uid == "phoenix"].count("retry") == 1
    assert res.manifest.status == "failed"
    store_is_consistent(tmp_path / "store")


def test_killed_dask_worker_fails_only_its_node(tmp_path, dask_executor):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("kill", seed=0)
    # The victim waits until the independent node has finished, so no bystander shares its
    # worker when it dies.
    p.add("fine", st.touch_done, cfg(logs, "fine", value=1.0))
    p.add("victim", st.die, cfg(logs, "victim", wait_for=str(logs / "fine.done")))
    p.add("after", st.counted_add, cfg(logs, "after"), x="victim")
    res = p.run(store=tmp_path / "store", executor=dask_executor)
    assert res.failed == ["victim"] and res.skipped == ["after"]
    assert res["fine"] == 1.0
    assert "WorkerDied" in res.errors["victim"]
    # The cluster recovers (the nanny restarts the worker) and keeps serving runs.
    again = st.build_pipeline().run(store=tmp_path / "store2", executor=dask_executor)
    assert again.ok, again.errors


# -- fail_fast ------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_fail_fast_stops_independent_branches(tmp_path, executor):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("ff", seed=0)
    p.add("a", st.counted, cfg(logs, "a", value=1.0))
    p.add("bad", st.boom, cfg(logs, "bad"), x="a")
    p.add("c1", st.counted, cfg(logs, "c1", value=1.0))
    p.add("c2", st.counted_add, cfg(logs, "c2"), x="c1")
    p.add("c3", st.counted_add, cfg(logs, "c3"), x="c2")
    p.add("c4", st.counted_add, cfg(logs, "c4"), x="c3")
    events: list[pf.NodeEvent] = []
    res = p.run(
        store=tmp_path / "store",
        executor=executor,
        workers=1,
        fail_fast=True,
        progress=events.append,
    )
    assert res.failed == ["bad"]
    assert "c4" in res.skipped and runs(logs, "c4") == 0
    assert res.manifest.status == "failed"
    nodes = {n.id: n for n in res.manifest.nodes}
    assert nodes["c4"].status == "cancelled" and "cancelled" in nodes["c4"].error
    assert any("fail_fast" in (n.error or "") for n in nodes.values())
    assert "c4" in [e.uid for e in events if e.kind == "skipped"]
    # Every node ends in a final state (nothing left "pending"), and the manifest reads back.
    assert {n.status for n in res.manifest.nodes} <= {"miss", "failed", "cancelled"}
    assert pf.load_manifest(res.manifest_path).status == "failed"
    # Without fail_fast the independent chain completes.
    res = p.run(store=tmp_path / "store", executor=executor, workers=1)
    assert res.failed == ["bad"] and res["c4"] == 1.0 and runs(logs, "c4") == 1


def test_serial_reports_each_node_as_it_finishes(tmp_path):
    """Independent nodes: each one's 'done' comes before the next one's 'started'."""
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("order", seed=0)
    for name in ("x", "y", "z"):
        p.add(name, st.counted, cfg(logs, name, value=1.0))
    events: list[pf.NodeEvent] = []
    p.run(store=tmp_path / "store", progress=events.append)
    kinds = [(e.kind, e.uid) for e in events if e.kind in ("started", "done")]
    assert kinds == [(k, n) for n in ("x", "y", "z") for k in ("started", "done")]


def test_serial_fail_fast_runs_nothing_after_the_failure(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("ff1", seed=0)
    p.add("a", st.counted, cfg(logs, "a", value=1.0))
    p.add("bad", st.boom, cfg(logs, "bad"), x="a")
    p.add("c", st.counted, cfg(logs, "c", value=1.0))
    p.add("d", st.counted_add, cfg(logs, "d"), x="c")  # queued behind 'bad', independent of it
    res = p.run(store=tmp_path / "store", fail_fast=True)
    assert res.failed == ["bad"] and runs(logs, "d") == 0
    assert res.manifest.node("d").status == "cancelled"


# -- Ctrl-C ---------------------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    import executor_stages as st
    import physflow as pf

    if __name__ == "__main__":
        logs, store, executor = sys.argv[1], sys.argv[2], sys.argv[3]
        if executor == "dask":
            executor = pf.DaskExecutor(workers=1)
        p = pf.Pipeline("sigint", seed=0)
        p.add("quick", st.counted, st.LogCfg(log_dir=logs, name="quick", value=1.0))
        p.add("slow", st.slow, st.LogCfg(log_dir=logs, name="slow", seconds=120.0), )
        p.add("after", st.counted_add, st.LogCfg(log_dir=logs, name="after"), x="slow")
        p.run(store=store, executor=executor, workers=2)
    """
)


@pytest.mark.parametrize(
    ("executor", "to_group"),
    [("serial", False), ("processes", False), ("processes", True), ("dask", False)],
)
def test_sigint_cancels_and_writes_interrupted_manifest(tmp_path, executor, to_group):
    """SIGINT to the runner (``to_group``: to its whole process group, as a terminal's Ctrl-C
    does, so workers receive it too)."""
    logs, store = tmp_path / "logs", tmp_path / "store"
    logs.mkdir()
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(here=HERE))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(logs), str(store), executor],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=to_group,
    )
    try:
        deadline = time.monotonic() + 60
        while not (logs / "slow.started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow stage never started"
            time.sleep(0.02)
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err and "manifest written to" in err
    # The process that ran the slow stage is gone: running work was cancelled, not orphaned.
    psutil = pytest.importorskip("psutil")
    worker_pid = int((logs / "slow.started").read_text())
    deadline = time.monotonic() + 20
    while psutil.pid_exists(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(worker_pid)
    manifests = list((store / "manifests").glob("*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["status"] == "interrupted"
    nodes = {n["id"]: n["status"] for n in manifest["nodes"]}
    assert nodes["slow"] == "cancelled" and nodes["after"] == "cancelled"
    # finished work is recorded as finished (serial runs "quick" before "slow" starts)
    quick = next(n for n in manifest["nodes"] if n["id"] == "quick")
    assert (
        nodes["quick"] == "miss"
        if executor == "serial"
        else nodes["quick"] in ("miss", "cancelled")
    ), {k: quick.get(k) for k in ("status", "error", "duration_s")}
    store_is_consistent(store)
    # A re-run resumes: the interrupted node was never recorded.
    from physflow.core.records import decode_record
    from tests.conftest import RawRecords

    raw = RawRecords(pf.Store(store))
    names = [decode_record(raw.read(key)).node_id for key in raw.key_list()]
    assert "slow" not in names


# -- corrupt inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_corrupt_input_is_quarantined_and_recomputed(tmp_path, executor):
    if not hasattr(pf.Store, "quarantine"):
        pytest.skip("Store.quarantine not available")
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("corrupt", seed=0)
    p.add("arr", st.counted_array, cfg(logs, "arr", value=2.0))
    p.add("total", st.counted_sum, cfg(logs, "total"), x="arr")
    first = p.run(store=tmp_path / "store", executor=executor, workers=2)
    assert first.ok, first.errors
    store = pf.Store(tmp_path / "store")
    (obj,) = first.entries("arr")["value"].objects
    chunks = [
        f
        for f in store.object_path(obj).rglob("*")
        if f.is_file() and f.stat().st_size >= 8_000_000
    ]
    assert len(chunks) == 1
    with open(chunks[0], "r+b") as fh:  # flip one byte in the middle of the stored array
        fh.seek(4_000_000)
        byte = fh.read(1)
        fh.seek(4_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))

    p2 = pf.Pipeline("corrupt", seed=0)  # the consumer changes, so it must read the input
    p2.add("arr", st.counted_array, cfg(logs, "arr", value=2.0))
    p2.add("total", st.counted_sum, cfg(logs, "total", value=1.0), x="arr")
    events: list[pf.NodeEvent] = []
    res = p2.run(store=tmp_path / "store", executor=executor, workers=2, progress=events.append)
    assert res.ok, res.errors
    assert res["total"] == pytest.approx(2.0 * 999_999 * 1_000_000 / 2)
    assert runs(logs, "arr") == 2  # recomputed once
    assert runs(logs, "total") == 2  # the corrupt input was detected before the stage ran
    assert sorted(res.misses) == ["arr", "total"]
    assert any(
        e.kind == "retry" and e.uid == "total" and "corrupt" in (e.error or "") for e in events
    )
    store_is_consistent(tmp_path / "store")


# -- stages workers cannot import -----------------------------------------------------------------


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_unimportable_stage_is_a_clear_node_error(tmp_path, executor, dask_executor):
    @pf.stage(version="1")
    def local_stage() -> float:  # defined in a function: workers cannot import it by path
        return 1.0

    p = pf.Pipeline("local", seed=0)
    p.add("here", local_stage)
    p.add("fine", st.counted, cfg(tmp_path, "fine", value=2.0))
    ex = dask_executor if executor == "dask" else executor
    res = p.run(store=tmp_path / "store", executor=ex, workers=2)
    assert res.failed == ["here"] and res["fine"] == 2.0
    assert "importable" in res.errors["here"] and "PYTHONPATH" in res.errors["here"]
    # The same pipeline works in-process.
    assert p.run(store=tmp_path / "store", executor="serial").ok
