"""Sample identity: bits independent of shard size, executor and workers; grow N -> 2N computes
only the new samples; a second run computes nothing; a kill -9 resumes with only the missing
shards and ends bit-identical to an uninterrupted generation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import physflow as pf

from .conftest import same_samples
from .ml_stages import OUTPUTS, STALL_ENV, VARY, calls, pipeline

ROOT = Path(__file__).resolve().parents[2]
ARGS = {"vary": VARY, "outputs": OUTPUTS, "progress": False}


def test_same_bits_across_shard_sizes_and_executors(tmp_path):
    ref = pf.ml.generate(pipeline(), samples=30, shard_size=8, store=tmp_path / "a", **ARGS)
    other = pf.ml.generate(pipeline(), samples=30, shard_size=7, store=tmp_path / "b", **ARGS)
    threads = pf.ml.generate(
        pipeline(), samples=30, shard_size=4, executor="threads", workers=3,
        store=tmp_path / "c", **ARGS,
    )  # fmt: skip
    procs = pf.ml.generate(
        pipeline(), samples=30, shard_size=8, executor="processes", workers=2,
        store=tmp_path / "d", **ARGS,
    )  # fmt: skip
    for ds in (other, threads, procs):
        same_samples(ref, ds)
        assert ds.card.identity == ref.card.identity
    assert procs.card.generation.executor == "processes"
    # same shard size: the same objects, whoever computed them
    assert [s.arrays for s in procs.card.shards] == [s.arrays for s in ref.card.shards]


@pytest.mark.slow
def test_same_bits_on_dask(tmp_path):
    pytest.importorskip("distributed")
    ref = pf.ml.generate(pipeline(), samples=20, shard_size=6, store=tmp_path / "a", **ARGS)
    ds = pf.ml.generate(
        pipeline(), samples=20, shard_size=6, executor="dask", workers=2,
        store=tmp_path / "b", **ARGS,
    )  # fmt: skip
    same_samples(ref, ds)
    assert ds.card.generation.executor == "dask"
    assert [s.arrays for s in ds.card.shards] == [s.arrays for s in ref.card.shards]


def test_seed_changes_samples_and_identity(tmp_path):
    a = pf.ml.generate(pipeline(), samples=4, store=tmp_path / "s", **ARGS)
    b = pf.ml.generate(pipeline(), samples=4, seed=99, store=tmp_path / "s", **ARGS)
    assert a.card.identity != b.card.identity
    assert a[0]["x"].tobytes() != b[0]["x"].tobytes()
    assert a[0]["signal.amplitude"] != b[0]["signal.amplitude"]


def test_grow_computes_only_new_samples(tmp_path, count_file):
    store = tmp_path / "store"
    small = pf.ml.generate(pipeline(), samples=20, shard_size=8, store=store, **ARGS)
    assert calls(count_file) == 20
    big = pf.ml.generate(pipeline(), samples=40, shard_size=8, store=store, **ARGS)
    assert calls(count_file) == 40  # 20 new samples, the partial shard 16:20 was extended
    g = big.card.generation
    assert (g.computed_samples, g.reused_samples) == (20, 20)
    assert (g.reused_shards, g.extended_shards) == (2, 1)
    for i in range(20):
        assert big[i]["x"].tobytes() == small[i]["x"].tobytes()
    fresh = pf.ml.generate(pipeline(), samples=40, shard_size=8, store=tmp_path / "f", **ARGS)
    assert [s.arrays for s in fresh.card.shards] == [s.arrays for s in big.card.shards]
    before = calls(count_file)
    again = pf.ml.generate(pipeline(), samples=40, shard_size=8, store=store, **ARGS)
    shrunk = pf.ml.generate(pipeline(), samples=30, shard_size=8, store=store, **ARGS)
    assert calls(count_file) == before  # nothing computed: all shards, or a longer tail, exist
    assert again.card.generation.computed_samples == shrunk.card.generation.computed_samples == 0
    same_samples(shrunk, pf.ml.Dataset(fresh.card, fresh.store, indices=np.arange(30)))


_CHILD = """
import sys
sys.path.insert(0, {root!r})
import physflow as pf
from tests.ml.ml_stages import OUTPUTS, VARY, pipeline
pf.ml.generate(pipeline(), samples=40, shard_size=8, vary=VARY, outputs=OUTPUTS,
               store={store!r}, progress=False)
"""


def test_kill_9_then_resume_computes_only_missing_shards(tmp_path, count_file):
    store = tmp_path / "store"
    env = dict(os.environ, **{STALL_ENV: "21"})  # the child hangs in its 21st sample
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT), store=str(store))], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while calls(count_file) < 21:
            assert child.poll() is None, "the generating process ended early"
            assert time.monotonic() < deadline, "the generating process made no progress"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (store / "datasets").exists()  # no card: the run did not finish
    os.remove(count_file)
    ds = pf.ml.generate(pipeline(), samples=40, shard_size=8, store=store, **ARGS)
    # samples 0..15 were in finished shards; 16..39 are computed now
    assert calls(count_file) == 24
    assert ds.card.generation.reused_shards == 2
    clean = pf.ml.generate(pipeline(), samples=40, shard_size=8, store=tmp_path / "c", **ARGS)
    assert [s.arrays for s in ds.card.shards] == [s.arrays for s in clean.card.shards]
    same_samples(ds, clean)
    report = pf.Store(store).verify(quarantine=False)
    assert report.ok, str(report)
