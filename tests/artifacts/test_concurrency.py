"""Real processes: concurrent overlapping writers, and SIGKILL at random points during writes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physflow as pf

from . import store_stages as S
from .store_worker import overlap_pipeline

ROOT = Path(__file__).resolve().parents[2]


def _worker(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.artifacts.store_worker", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kwargs,
    )


def _published(store):
    """Every visible object: (path, inode, mtime) of each file, to check nothing changes."""
    return {
        str(p): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in store.objects_dir.rglob("*")
        if p.is_file()
    }


def test_four_processes_with_overlapping_nodes(tmp_path):
    store = pf.Store(tmp_path / "s")
    go = tmp_path / "go"
    procs = [
        _worker(
            "overlap",
            str(store.root),
            str(w),
            str(go),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    # the same node config gives the same digest in every process, and the right value
    by_node: dict[str, set[str]] = {}
    for out in outputs:
        for node, d in out["digests"].items():
            by_node.setdefault(node, set()).add(d)
    assert all(len(ds) == 1 for ds in by_node.values())
    for seed in range(9):
        expected = np.random.default_rng(seed).standard_normal((2 << 20) // 8)
        assert by_node[f"big{seed}"] == {pf.digest(expected)}
    report = store.verify()
    assert report.ok, str(report)
    assert report.objects_checked == 9 + 1  # 9 distinct random arrays + the streamed field
    assert list(store.tmp_dir.iterdir()) == []
    # everything is now a hit, for every worker's pipeline, and published files never change
    before = _published(store)
    for w in range(4):
        res = overlap_pipeline(w).run(store=store)
        assert not res.misses
    assert _published(store) == before


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_store_consistent(tmp_path):
    store = pf.Store(tmp_path / "s")
    kill_points = sorted(random.Random(20261122).sample(range(1, 120), 20))
    left_partial = 0
    for kill_at in kill_points:
        proc = _worker("churn", str(store.root), str(kill_at), stderr=subprocess.PIPE, text=True)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err
        left_partial += bool(list(store.tmp_dir.iterdir()))
        report = store.verify(quarantine=False)
        assert report.ok, f"after a kill at write {kill_at}:\n{report}"
    assert left_partial > 0  # the kills really landed inside writes
    # leftovers of the dead writers are garbage; gc removes them (and nothing visible)
    visible = sorted(p for p in store.objects_dir.rglob("zarr.json"))
    report = store.gc(keep_manifests=None)
    assert report.removed_tmp and list(store.tmp_dir.iterdir()) == []
    assert sorted(p for p in store.objects_dir.rglob("zarr.json")) == visible
    # a rerun completes and gives the right values
    p = pf.Pipeline("after")
    p.add("big", S.big_random, S.BigConfig(seed=1000, mib=3))
    p.add("mean", S.mean_of, x="big")
    p.add("field", S.stream_field, S.FieldConfig(rows=128, cols=1024, chunk_rows=16))
    res = p.run(store=store)
    assert res.ok, res.errors
    expected = np.random.default_rng(1000).standard_normal((3 << 20) // 8)
    np.testing.assert_array_equal(res["big"], expected)
    assert res.digest("field.field") == pf.digest(
        S.field_block((slice(0, 128), slice(0, 1024)), 1024)
    )
    assert store.verify().ok
