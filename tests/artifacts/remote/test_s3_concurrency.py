"""Many writers on one s3:// store: 4 processes (each with its own local tier) and a 2-worker
dask LocalCluster run overlapping pipelines at once; writers are SIGKILLed at random points.
Values are checked against an independent computation (numpy on the same seeds)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import physflow as pf

from .conftest import ROOT, spec, worker
from .remote_worker import churn_pipeline, expected_mean, shared_pipeline

pytestmark = pytest.mark.timeout(300)


def _check_store(store: pf.Store) -> tuple[int, int]:
    """0 lost: every record's outputs load (verified); verify() is clean. Returns counts."""
    keys = store.actions.list_keys()
    for key in keys:
        record = store.get_action(key)
        assert record is not None, f"record {key} unreadable"
        for entry in record.outputs.values():
            store.get_value(entry)  # raises on a missing or corrupt object
    report = store.verify(quarantine=False)
    assert report.ok, str(report)
    return report.objects_checked, report.records_checked


@pytest.mark.slow
def test_four_processes_and_a_dask_cluster_share_one_s3_store(bucket, tmp_path):
    pytest.importorskip("distributed")
    go = tmp_path / "go"
    procs = [
        worker(
            "overlap",
            spec(bucket, tmp_path / f"tier{w}"),
            str(w),
            str(go),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)  # dask workers import the test stages by module path
    try:
        with pf.DaskExecutor(workers=2) as executor:
            executor.connect()
            store = bucket.store(cache_dir=tmp_path / "tier-dask")  # shared by both workers
            go.touch()
            res = shared_pipeline(3).run(store=store, executor=executor)  # overlaps worker 3
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    assert res.ok, res.errors
    results = [{"digests": {n: res.digest(n) for n in res.outcome.states}, "means": {}}]
    results[0]["means"] = {n: res[n] for n in results[0]["digests"] if n.startswith("mean")}
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    digests: dict[str, set[str]] = {}
    for result in results:
        for node, d in result["digests"].items():
            digests.setdefault(node, set()).add(d)
        for node, mean in result["means"].items():  # 0 wrong: equal to numpy on the same seed
            assert mean == expected_mean(int(node[4:])), node
    assert all(len(ds) == 1 for ds in digests.values()), digests
    for seed in range(7):
        big = np.random.default_rng(seed).standard_normal((1 << 20) // 8)
        assert digests[f"big{seed}"] == {pf.digest(big)}
    objects, records = _check_store(bucket.store())
    assert objects == 7 + 1  # big0..big6 and the field, each stored once
    assert records == 7 + 7 + 2  # big, mean per seed; field, sums


@pytest.mark.slow
def test_sigkill_of_writers_at_random_points_leaves_a_clean_resumable_store(bucket, tmp_path):
    """Ten writers killed inside a write (a staged file half written, just before or after a
    PUT, a delete), two at a time: afterwards nothing half-written is visible and every
    pipeline runs to the right values."""
    rng = random.Random(19)
    kills = [rng.randrange(1, 60) for _ in range(10)]
    for pair in range(0, len(kills), 2):
        procs = [
            worker(
                "churn",
                spec(bucket, tmp_path / f"tier{pair + k % 2}"),
                str(kill_at),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k, kill_at in enumerate(kills[pair : pair + 2])
        ]
        for proc in procs:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == -signal.SIGKILL, err
        _check_store(bucket.store())  # clean after every pair of kills
    store = bucket.store(cache_dir=tmp_path / "tier0")
    for i in range(4):  # resumable: the same pipelines finish, with the right values
        res = churn_pipeline(i).run(store=store)
        assert res.ok, res.errors
        assert res["mean"] == expected_mean(1000 + i)
    assert not any(Path(tmp_path / "tier0" / "staging").iterdir())  # dead writers' staging swept
    _check_store(bucket.store())


def test_parallel_puts_from_threads_of_one_process(bucket):
    """Threads share one Store: overlapping values and records, no lost update."""
    store = bucket.store()
    values = [np.full(20_000, i % 3, dtype=np.int32) for i in range(9)]
    out: dict[int, str] = {}

    def put(i: int) -> None:
        out[i] = store.put_value(values[i]).digest

    threads = [threading.Thread(target=put, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {out[i] for i in range(9)} == {pf.digest(values[i]) for i in range(3)}
    assert store.verify().objects_checked == 3
