"""dask on a shared store: a worker killed mid-run costs one attempt, not the run; a client the
user made (as with dask-jobqueue) runs pipelines on an s3:// store its workers reach by URL."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import physflow as pf

from . import shared_stages as st

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_path(monkeypatch):
    """Workers import the stages by module path; dask's nannies write their pre-spawn
    environment (MALLOC_TRIM_THRESHOLD_, ...) into this process: it is restored afterwards."""
    pytest.importorskip("distributed")
    saved = dict(os.environ)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    yield
    for name in [k for k in os.environ if k not in saved]:
        del os.environ[name]
    os.environ.update(saved)


def _pipeline(log_dir: Path, n: int, seconds: float) -> pf.Pipeline:
    p = pf.Pipeline("loss")
    for i in range(n):
        p.add(f"b{i}", st.slow_block, st.SlowConfig(index=i, log_dir=str(log_dir), seconds=seconds))
        p.add(f"t{i}", st.block_total, x=f"b{i}")
    return p


def _check(res, store, n):
    assert res.ok, res.errors
    for i in range(n):
        np.testing.assert_array_equal(res[f"b{i}"], np.arange(50_000.0) * i)
        assert res[f"t{i}"] == float((np.arange(50_000.0) * i).sum())
    report = store.verify(quarantine=False)
    assert report.ok and report.records_checked == 2 * n, str(report)


def test_killing_a_worker_mid_run_costs_one_attempt(bucket, tmp_path, worker_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 8
    store = bucket.store(cache_dir=tmp_path / "tier")
    with pf.DaskExecutor(workers=2) as executor:
        pids = set(executor.client.run(os.getpid).values())
        box: dict = {}
        runner = threading.Thread(
            target=lambda: box.update(
                res=_pipeline(logs, n, 1.0).run(store=store, executor=executor)
            )
        )
        runner.start()
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline:  # a task is running on a worker
            started = [p.name.split(".") for p in logs.iterdir()]
            victim = next((int(pid) for _i, pid, _s in started if int(pid) in pids), None)
            time.sleep(0.01)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        runner.join(240)
        res = box["res"]
    _check(res, bucket.store(), n)
    starts = [p.name.split(".") for p in logs.iterdir()]
    killed = [i for i, pid, _s in starts if int(pid) == victim]
    assert killed and all(sum(1 for j, _p, _s in starts if j == i) == 2 for i in killed)
    assert len({i for i, _p, _s in starts}) == n  # every node ran; only the victim's twice


def test_executor_with_a_client_of_an_existing_cluster(bucket, tmp_path, worker_path):
    """DaskExecutor(client=...) as with dask-jobqueue: the cluster is the user's; its workers
    open the store by its URL and options (each with its own tier) and physflow leaves the
    client open."""
    from distributed import Client, LocalCluster

    logs = tmp_path / "logs"
    logs.mkdir()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        store = bucket.store(cache_dir=tmp_path / "tier")
        executor = pf.DaskExecutor(client=client)
        res = _pipeline(logs, 4, 0.0).run(store=store, executor=executor)
        _check(res, bucket.store(), 4)
        again = _pipeline(logs, 4, 0.0).run(store=bucket.store(), executor=executor)
        assert len(again.hits) == 8
        executor.close()
        assert client.status == "running"
        opened = client.run(_stores_opened)  # the workers opened the store by its URL
        assert all(urls in ([], [bucket.url()]) for urls in opened.values()), opened
        assert any(opened.values()), opened


def _stores_opened() -> list[str]:
    from physflow.executors import dask as physflow_dask

    return sorted({store.location for store in physflow_dask._STORES.values()})
