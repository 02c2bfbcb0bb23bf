"""Per-node random streams: reproducible, independent, and never the global numpy state."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import physflow as pf

from .counting_stages import Scale, global_rng_user, lazy_importer, noise


def _pipe(seed, ids=("a", "b")):
    p = pf.Pipeline("rng", seed=seed)
    for node_id in ids:
        p.add(node_id, noise, Scale(factor=1.0))
    return p


def test_same_seed_same_streams(tmp_path):
    r1 = _pipe(5).run(store=tmp_path / "s1")
    r2 = _pipe(5).run(store=tmp_path / "s2")  # another store: recomputed, not served from cache
    assert r2.misses == ["a", "b"]
    np.testing.assert_array_equal(r1["a"], r2["a"])
    np.testing.assert_array_equal(r1["b"], r2["b"])


def test_streams_differ_by_seed_and_node(tmp_path):
    r5 = _pipe(5).run(store=tmp_path / "s")
    r6 = _pipe(6).run(store=tmp_path / "s")
    assert not np.allclose(r5["a"], r5["b"])
    assert not np.allclose(r5["a"], r6["a"])
    # independent streams: sample correlation of 2 x 64 normals is small
    assert abs(np.corrcoef(r5["a"], r5["b"])[0, 1]) < 0.5


def test_stream_matches_seedsequence_contract(tmp_path):
    from physflow.pipeline.rng import spawn_key

    res = _pipe(11, ids=("x",)).run(store=tmp_path / "s")
    expected = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(11, spawn_key=spawn_key("x")))
    ).standard_normal(64)
    np.testing.assert_array_equal(res["x"], expected)


def test_global_state_untouched(tmp_path):
    np.random.seed(1234)
    before = np.random.get_state()
    _pipe(1).run(store=tmp_path / "s")
    after = np.random.get_state()
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])


def test_stage_touching_global_state_is_restored_and_warned(tmp_path):
    np.random.seed(99)
    before = np.random.get_state()
    p = pf.Pipeline("bad", seed=0)
    p.add("g", global_rng_user, Scale(factor=1.0))
    with pytest.warns(RuntimeWarning, match="global_rng_user") as caught:
        p.run(store=tmp_path / "s")
    after = np.random.get_state()
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]
    assert "imported modules" not in str(caught[0].message)


def test_an_import_that_draws_global_random_numbers_is_named(tmp_path):
    """A lazily imported library that draws from numpy's global generator (jax 0.10 does) is
    restored like any other change, and the warning says an import may be the cause."""
    sys.modules.pop("tests.pipeline.draws_on_import", None)
    before = np.random.get_state()[1].copy()
    p = pf.Pipeline("lazy", seed=0)
    p.add("i", lazy_importer, Scale(factor=2.0))
    with pytest.warns(RuntimeWarning, match="import those libraries at module level"):
        assert p.run(store=tmp_path / "s")["i"] == 2.0
    np.testing.assert_array_equal(np.random.get_state()[1], before)
