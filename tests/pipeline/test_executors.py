"""Executors: identical results everywhere, resources as slots, events, small task traffic.

Uses real worker processes and a real dask LocalCluster (2 worker processes, started once for
this module). Concurrency is observed through files written by the stages, never by comparing
sleeps to wall-clock time.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import executor_stages as st  # noqa: E402

import physflow as pf  # noqa: E402
from physflow.executors.processes import ProcessExecutor  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def all_digests(res) -> dict[str, str]:
    return {uid: res.digest(uid) for uid in res.outcome.states}


def intervals(log_dir: Path) -> list[tuple[float, float]]:
    out = []
    for path in sorted(log_dir.glob("*.interval")):
        start, end = map(float, path.read_text().split())
        out.append((start, end))
    return sorted(out)


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """Largest number of spans open at one instant (an end and a start at the same instant
    do not overlap)."""
    points = [(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans]
    depth = best = 0
    for _, step in sorted(points, key=lambda p: (p[0], p[1])):
        depth += step
        best = max(best, depth)
    return best


# -- determinism ----------------------------------------------------------------------------------


def test_same_digests_on_every_executor_in_any_order(tmp_path, dask_executor):
    pipeline = st.build_pipeline()
    reference = pipeline.run(store=tmp_path / "serial", executor="serial")
    assert reference.ok and len(reference.misses) == len(pipeline.nodes)
    expected = all_digests(reference)
    runs = {
        "serial-shuffled": dict(executor="serial", order_seed=1),
        "threads": dict(executor="threads", workers=2),
        "threads-shuffled": dict(executor="threads", workers=2, order_seed=2),
        "processes": dict(executor="processes", workers=2),
        "processes-shuffled": dict(executor="processes", workers=2, order_seed=3),
        "dask": dict(executor=dask_executor),
        "dask-shuffled": dict(executor=dask_executor, order_seed=4),
    }
    for name, options in runs.items():
        res = pipeline.run(store=tmp_path / name, **options)
        assert res.ok, (name, res.errors)
        assert len(res.misses) == len(pipeline.nodes), name
        assert all_digests(res) == expected, name
        assert res.manifest.executor == (
            options["executor"] if isinstance(options["executor"], str) else "dask"
        )
    # The values themselves agree too (loaded from each store).
    assert res["s0.power"] == reference["s0.power"]


def test_shuffle_changes_order_not_results(tmp_path):
    pipeline = st.build_pipeline(fan=8)
    orders = []
    for seed in (11, 12):
        events: list[pf.NodeEvent] = []
        res = pipeline.run(store=tmp_path / str(seed), order_seed=seed, progress=events.append)
        assert res.ok
        orders.append([e.uid for e in events if e.kind == "started"])
    assert sorted(orders[0]) == sorted(orders[1])
    assert orders[0] != orders[1]


def test_shared_store_runs_misses_once_then_hits(tmp_path, dask_executor):
    """Processes and dask write the same store as serial: a second run on another executor
    is all hits (workers really wrote records the parent can read)."""
    pipeline = st.build_pipeline()
    first = pipeline.run(store=tmp_path, executor="processes", workers=2)
    assert first.ok and not first.hits
    again = pipeline.run(store=tmp_path, executor=dask_executor)
    assert len(again.hits) == len(pipeline.nodes) and not again.misses
    assert all_digests(again) == all_digests(first)


# -- large values stay in the store ----------------------------------------------------------------


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_outcomes_are_small_and_values_come_from_the_store(tmp_path, executor, dask_executor):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = pf.Pipeline("big", seed=0)
    p.add("arr", st.counted_array, st.LogCfg(log_dir=str(logs), name="arr", value=3.0))
    p.add("total", st.counted_sum, st.LogCfg(log_dir=str(logs), name="total"), x="arr")
    ex = dask_executor if executor == "dask" else executor
    res = p.run(store=tmp_path / "store", executor=ex, workers=2)
    assert res.ok, res.errors
    for uid in ("arr", "total"):
        outcome = res.outcome.states[uid].outcome
        assert outcome.values is None  # nothing but the record came back
        assert len(pickle.dumps(outcome)) < 4096
    assert res["total"] == pytest.approx(3.0 * 999_999 * 1_000_000 / 2)
    assert not res.outcome.memory


# -- resources -------------------------------------------------------------------------------------


def _resource_pipeline(stage, log_dir: Path, n: int, **extra) -> pf.Pipeline:
    p = pf.Pipeline("res", seed=0)
    for i in range(n):
        p.add(
            f"t{i}", stage, st.LogCfg(log_dir=str(log_dir), name=f"t{i}", value=float(i), **extra)
        )
    return p


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_cpu_resources_serialise_on_two_slots(tmp_path, executor):
    """cpus=2 on a 2-slot executor: never two at once. The control (cpus=1) must meet."""
    heavy_logs, light_logs = tmp_path / "heavy", tmp_path / "light"
    heavy_logs.mkdir()
    light_logs.mkdir()
    res = _resource_pipeline(st.heavy, heavy_logs, 4, seconds=0.05).run(
        store=tmp_path / "s", executor=executor, workers=2
    )
    assert res.ok, res.errors
    spans = intervals(heavy_logs)
    assert len(spans) == 4 and max_overlap(spans) == 1
    # Control: the same executor runs two 1-cpu tasks at the same time (they rendezvous).
    res = _resource_pipeline(st.light, light_logs, 2, meet=2).run(
        store=tmp_path / "s", executor=executor, workers=2
    )
    assert res.ok, res.errors
    assert max_overlap(intervals(light_logs)) == 2


def test_gpu_slots_on_process_executor(tmp_path):
    executor = ProcessExecutor(2, resources={"cpus": 2, "gpus": 1})
    res = _resource_pipeline(st.on_gpu, tmp_path, 3, seconds=0.05).run(
        store=tmp_path / "s", executor=executor
    )
    assert res.ok, res.errors
    spans = intervals(tmp_path)
    assert len(spans) == 3 and max_overlap(spans) == 1


def test_dask_maps_resources_to_worker_resources(tmp_path, dask_executor):
    """Workers offer cpus=2 each; cpus=2 tasks take a whole worker: at most 2 at once, while
    1-cpu tasks reach 3 at once (control, by rendezvous)."""
    heavy_logs, light_logs = tmp_path / "heavy", tmp_path / "light"
    heavy_logs.mkdir()
    light_logs.mkdir()
    res = _resource_pipeline(st.light, light_logs, 3, meet=3).run(
        store=tmp_path / "s", executor=dask_executor
    )
    assert res.ok, res.errors
    assert max_overlap(intervals(light_logs)) == 3
    res = _resource_pipeline(st.heavy, heavy_logs, 6, seconds=0.05).run(
        store=tmp_path / "s", executor=dask_executor
    )
    assert res.ok, res.errors
    spans = intervals(heavy_logs)
    assert len(spans) == 6 and max_overlap(spans) <= 2


def test_resource_request_larger_than_capacity_runs_alone(tmp_path):
    """A cpus=2 request on a 1-worker executor is clamped instead of waiting forever."""
    res = _resource_pipeline(st.heavy, tmp_path, 2).run(
        store=tmp_path / "s", executor="processes", workers=1
    )
    assert res.ok and len(res.misses) == 2


# -- events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["serial", "threads", "processes", "dask"])
def test_events_cover_every_node(tmp_path, executor, dask_executor):
    executor = dask_executor if executor == "dask" else executor
    pipeline = st.build_pipeline()
    events: list[pf.NodeEvent] = []
    res = pipeline.run(store=tmp_path, executor=executor, workers=2, progress=events.append)
    assert res.ok, res.errors
    n = len(pipeline.nodes)
    kinds = [e.kind for e in events]
    assert kinds.count("queued") == kinds.count("started") == kinds.count("done") == n
    for uid in pipeline.nodes:
        mine = [e.kind for e in events if e.uid == uid]
        assert mine == ["queued", "started", "done"], (uid, mine)
    assert all(e.total == n for e in events)
    assert all(e.duration_s is not None for e in events if e.kind == "done")
    events.clear()
    pipeline.run(store=tmp_path, executor=executor, workers=2, progress=events.append)
    assert [e.kind for e in events] == ["hit"] * n


def test_unknown_executor_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown executor 'gpu'.*'processes', 'dask'"):
        st.build_pipeline().run(store=tmp_path, executor="gpu")


def test_dask_reports_real_starts(tmp_path, dask_executor):
    """Three cpus=2 tasks on two cpus=2 workers: the third can only start after one finished,
    so its "started" event must come after a "done" (submission time would put it before)."""
    events: list[pf.NodeEvent] = []
    res = _resource_pipeline(st.heavy, tmp_path, 3, seconds=0.3).run(
        store=tmp_path / "s", executor=dask_executor, progress=events.append
    )
    assert res.ok, res.errors
    kinds = [e.kind for e in events]
    assert kinds.count("started") == 3 and kinds.count("done") == 3
    third_start = [i for i, k in enumerate(kinds) if k == "started"][2]
    assert kinds.index("done") < third_start
    for uid in res.outcome.states:
        mine = [e.kind for e in events if e.uid == uid]
        assert mine == ["queued", "started", "done"]


def test_dask_executor_joins_an_existing_scheduler(tmp_path, dask_executor):
    """An address joins a running cluster (here: the module's) and closing the joined executor
    leaves that cluster running."""
    address = dask_executor.cluster.scheduler_address
    joined = pf.DaskExecutor(address)
    try:
        res = st.build_pipeline().run(store=tmp_path / "a", executor=joined)
        assert res.ok, res.errors
        assert res.manifest.executor == "dask"
    finally:
        joined.close()
    assert dask_executor.client.status == "running"
    res = st.build_pipeline(seed=3).run(store=tmp_path / "b", executor=dask_executor)
    assert res.ok, res.errors


def _malloc_trim_setting() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_neither_leaks_env_nor_sets_malloc_trim(dask_executor):
    """dask's nannies write their pre-spawn environment into the parent process; physflow's
    LocalCluster restores it (later process pools would inherit a malloc trim that makes
    numpy allocation-heavy stages ~1.5x slower) and does not give workers the trim either."""
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ
    assert "__DASK_PARENT_PID" not in os.environ
    on_workers = dask_executor.client.run(_malloc_trim_setting)
    assert len(on_workers) == 2 and set(on_workers.values()) == {None}


def test_process_workers_see_the_runners_current_environment(tmp_path, monkeypatch):
    """Forkserver children inherit the forkserver's environment, which may be stale."""
    warmup = pf.Pipeline("env", seed=0)
    warmup.add("v", st.env_value, st.EnvName(name="PHYSFLOW_TEST_ENV_PROBE"))
    assert warmup.run(store=tmp_path / "a", executor="processes", workers=1).ok  # server runs
    monkeypatch.setenv("PHYSFLOW_TEST_ENV_PROBE", "set after the forkserver started")
    res = warmup.run(store=tmp_path / "b", executor="processes", workers=1)
    assert res["v"] == "set after the forkserver started"
