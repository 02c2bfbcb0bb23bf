"""The decoder as a physflow pipeline: chunking, backends, dtypes, appended bins, the YAML."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.stages.neuro import hmm

from .helpers import computed_chunks, run, small_pipeline

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "configs" / "neuro_decode.yaml"


def test_default_config_decodes_within_10_cm_and_is_free_the_second_time(store):
    p = pf.load_spec(SPEC)
    first = run(p, store)
    assert sorted(first.misses) == sorted(
        ["simulate", "encode", "transition", "likelihood", "filter", "smoother", "summary"]
    )
    metrics = first["summary.metrics"]
    # held-out bins (after the training segment) decoded within 10 cm
    assert metrics["frac_within"] >= 0.80, metrics
    assert metrics["n_held_out"] == 30_000
    err = np.asarray(first["summary.error"])[30_000:]
    assert metrics["frac_within"] == pytest.approx(np.mean(err <= 10.0))
    again = pf.load_spec(SPEC).run(store=store)
    assert again.misses == [] and len(again.hits) == 7
    assert again.digest("smoother") == first.digest("smoother")


def test_filter_and_smoother_match_an_unchunked_in_memory_decode(store):
    """Pipeline outputs (float64 storage) equal the kernels run on the whole record at once,
    for filter chunk sizes that divide T (1000, 6000) and that do not (1750)."""
    res = run(small_pipeline(filter_chunk=1000), store)
    ll, A = np.asarray(res["likelihood"]), np.asarray(res["transition"])
    s = A.shape[0]
    f, _, logz = hmm.forward_numpy(ll, A, np.full(s, 1.0 / s))
    g, _ = hmm.backward_numpy(ll, A, f, None)
    for chunk in (1000, 1750, 6000):
        r = run(small_pipeline(filter_chunk=chunk), store)
        np.testing.assert_allclose(r["filter.causal"], f, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r["smoother"], g, rtol=0, atol=1e-12)
        assert r["filter.log_marginal"] == pytest.approx(logz, rel=1e-12)
        assert r["smoother"].dtype == np.float64
    # float32 storage (the default): each entry rounded once, |error| <= 2**-24 * p
    r32 = run(small_pipeline(filter_chunk=1750, dtype="float32"), store)
    assert r32["smoother"].dtype == np.float32
    np.testing.assert_allclose(r32["smoother"], g, rtol=0, atol=6e-8)


def test_jax_backend_equals_numpy_backend(store):
    pytest.importorskip("jax", reason="jax is not installed (pip install 'physflow[jax]')")
    ref = run(small_pipeline(), store)
    got = run(small_pipeline(backend="jax"), store)
    # upstream nodes are shared; summary re-runs as the posteriors differ in the last bits
    assert sorted(got.hits) == ["encode", "likelihood", "simulate", "transition"]
    np.testing.assert_allclose(got["filter.causal"], ref["filter.causal"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["smoother"], ref["smoother"], rtol=0, atol=1e-12)
    assert got["filter.log_marginal"] == pytest.approx(ref["filter.log_marginal"], rel=1e-12)


def test_smoother_without_a_stored_causal_posterior_restarts_from_checkpoints(store):
    ref = run(small_pipeline(filter_chunk=1750), store)
    lean = run(small_pipeline(filter_chunk=1750, persist_causal=False), store)
    assert lean["filter.causal"] is None
    np.testing.assert_allclose(lean["smoother"], ref["smoother"], rtol=0, atol=1e-12)
    assert lean["filter.log_marginal"] == pytest.approx(ref["filter.log_marginal"], rel=1e-13)
    cp = lean["filter.checkpoints"]
    assert list(cp.starts) == [0, 1750, 3500, 5250] and cp.predicted.shape == (4, 40)
    forced = run(small_pipeline(filter_chunk=1750, reuse_causal=False), store)
    np.testing.assert_allclose(forced["smoother"], ref["smoother"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "before,after,expected",
    [(6000, 8000, 2), (6500, 8000, 2)],  # the second case extends a ragged last chunk
    ids=["whole-chunks", "ragged-tail"],
)
def test_appending_time_bins_recomputes_only_new_chunks(store, caplog, before, after, expected):
    caplog.set_level(logging.INFO, logger="physflow.stages.neuro")
    first = run(small_pipeline(before), store)
    assert computed_chunks(caplog, "likelihood") == (-(-before // 1000),) * 2
    caplog.clear()
    longer = run(small_pipeline(after), store)
    assert computed_chunks(caplog, "likelihood") == (expected, 8)
    assert computed_chunks(caplog, "filter") == (expected, 8)
    # encode re-ran on the longer recording but fitted the same fields: transition is a hit
    assert "transition" in longer.hits and "encode" in longer.misses
    n = before
    for ref in ("likelihood", "filter.causal"):
        np.testing.assert_array_equal(np.asarray(longer[ref])[:n], np.asarray(first[ref]))
    # the smoother depends on the future: it re-ran over every chunk and its prefix moved
    assert "smoother" in longer.misses
    moved = np.abs(np.asarray(longer["smoother"])[:n] - np.asarray(first["smoother"])).max()
    assert moved > 0
    # the appended run equals a cold run of the longer recording
    cold = run(small_pipeline(after), pf.Store(store.root.parent / "cold"))
    assert cold.digest("smoother") == longer.digest("smoother")


def test_uint16_and_float16_posteriors(store):
    exact = run(small_pipeline(), store)
    g = np.asarray(exact["smoother"])
    q = run(small_pipeline(dtype="uint16"), store)
    stored = np.asarray(q["smoother"])
    assert stored.dtype == np.uint16
    from physflow.stages.neuro import decode_posterior

    err = np.abs(decode_posterior(stored) - g)
    assert err.mean() < 1e-4 and err.max() <= 0.5 / 65535 + 1e-7
    h = run(small_pipeline(dtype="float16"), store)
    assert np.asarray(h["smoother"]).dtype == np.float16
    assert np.abs(np.asarray(h["smoother"], dtype=np.float64) - g).max() <= 2.0**-12


def test_summary_matches_independent_map_entropy_and_error(store):
    from scipy.stats import entropy

    res = run(small_pipeline(dtype="float32"), store)
    post = np.asarray(res["smoother"], dtype=np.float64)
    enc = res["encode"]
    centers = 0.5 * (enc.edges_cm[:-1] + enc.edges_cm[1:])
    x = np.asarray(res["simulate.position"])
    np.testing.assert_array_equal(res["summary.map_position"], centers[post.argmax(axis=1)])
    np.testing.assert_allclose(res["summary.entropy"], entropy(post, axis=1), atol=2e-5)
    err = np.abs(centers[post.argmax(axis=1)] - x)
    np.testing.assert_allclose(res["summary.error"], err, rtol=1e-6, atol=1e-5)
    m = res["summary.metrics"]
    assert m["frac_within"] == pytest.approx(np.mean(err[3000:] <= 10.0))
    assert m["frac_within_all"] == pytest.approx(np.mean(err <= 10.0))
    assert m["mean_entropy_nats"] == pytest.approx(entropy(post, axis=1).mean(), rel=1e-5)


def test_bad_configs_and_inputs_are_named(tmp_path, store):
    from physflow.stages.neuro import FilterConfig, hmm_filter

    text = SPEC.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("posterior_dtype: float32  #", "posterior_dtype: float8  #"))
    with pytest.raises(pf.SpecError) as err:
        pf.load_spec(bad)
    assert "bad.yaml:" in str(err.value) and "posterior_dtype" in str(err.value)
    assert "uint16" in str(err.value)
    with pytest.raises(ValueError, match=r"FilterConfig.backend = 'torch'.*'numpy', 'jax'"):
        FilterConfig(backend="torch")
    p = small_pipeline()
    p.add("wrong", hmm_filter, FilterConfig(), loglik="likelihood", transition="simulate.position")
    res = p.run(store=store)
    assert "transition is (6000,) but loglik has 40 position bins" in res.errors["wrong"]
    short = small_pipeline(2000, 1000, n_train=3000).run(store=store)
    assert "EncodeConfig.n_train = 3000 exceeds the recording (2000 bins)" in short.errors["encode"]


def test_background_writer_raises_the_writers_error_in_the_stage(store):
    from physflow.stages.neuro.writer import BackgroundWriter

    ctx = pf.StageContext(store)
    out = ctx.output_array("x", (10, 4), "f8", chunks=(5, 4))
    with pytest.raises(ValueError, match="must have shape"), BackgroundWriter() as writer:
        writer.put(out, (0, 0), np.ones((5, 4)))
        writer.put(out, (1, 0), np.ones((3, 4)))  # wrong shape: fails in the writer thread
        writer.close()
    good = ctx.output_array("y", (10, 4), "f8", chunks=(5, 4))
    with BackgroundWriter() as writer:
        for k in (0, 1):
            writer.put(good, (k, 0), np.full((5, 4), float(k)))
    np.testing.assert_array_equal(
        store.get_value(good.close()), np.repeat([0.0, 1.0], 5)[:, None] * np.ones(4)
    )


def test_the_jax_backend_leaves_numpy_global_random_state_alone(tmp_path):
    """Importing jax draws from numpy's global generator; a first jax decode in a fresh process
    must not read as the stage using global randomness (a warning that blames the user)."""
    pytest.importorskip("jax", reason="jax is not installed (pip install 'physflow[jax]')")
    code = (
        "import sys, warnings\n"
        "import numpy as np\n"
        "from tests.stages.neuro.helpers import run, small_pipeline\n"
        "import physflow as pf\n"
        "assert 'jax' not in sys.modules\n"
        "state = np.random.get_state()[1].copy()\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('error', RuntimeWarning)\n"
        f"    run(small_pipeline(backend='jax'), pf.Store({str(tmp_path / 's')!r}))\n"
        "assert 'jax' in sys.modules\n"
        "assert (np.random.get_state()[1] == state).all()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
