"""A phys-sims-utils 0.2 sweep driving a physflow pipeline through its unchanged adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
from phys_sims_utils.harness import InMemoryTestHarness, MetricSpec, SweepSpec
from phys_sims_utils.harness.adapters.phys_pipeline import PhysPipelineAdapter

import physflow as pf
from physflow.pipeline.harness import HarnessError

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
SIGMAS = [0.1, 0.5, 1.0]


def test_sweep_with_the_stock_adapter_is_cached(tmp_path):
    target = pf.load_spec(DEMO).as_harness_target(objective="power", store=tmp_path)
    adapter = PhysPipelineAdapter(
        target,
        objective_key="power",
        metric_extractors={"misses": lambda raw: raw["misses"], "hits": lambda raw: raw["hits"]},
    )
    harness = InMemoryTestHarness(name="physflow")
    spec = SweepSpec(parameters={"noisy.sigma": SIGMAS})
    first = harness.run_sweep(adapter, {}, spec, (MetricSpec("misses"),), seed=11)
    assert len(first.evaluations) == 3
    for ev, sigma in zip(first.evaluations, SIGMAS):
        assert ev.theta == {"noisy.sigma": sigma}
        # mean power of a unit tone plus white noise: 1/2 + sigma^2 (4096 samples)
        assert ev.objective == pytest.approx(0.5 + sigma**2, rel=0.08)
    # the tone is shared by all points; the seed differs per point (harness: seed + index)
    assert [ev.metrics["misses"] for ev in first.evaluations] == [3.0, 2.0, 2.0]
    again = harness.run_sweep(adapter, {}, spec, (MetricSpec("misses"),), seed=11)
    assert [ev.metrics["misses"] for ev in again.evaluations] == [0.0, 0.0, 0.0]
    assert [ev.metrics["hits"] for ev in again.evaluations] == [3.0, 3.0, 3.0]
    assert [ev.objective for ev in again.evaluations] == [ev.objective for ev in first.evaluations]


def test_physflow_adapter_carries_manifest_and_digests(tmp_path):
    target = pf.load_spec(DEMO).as_harness_target(
        objective="power", store=tmp_path, params={"sigma": "noisy.sigma"}, seed="pipeline"
    )
    result = InMemoryTestHarness().run_sweep(
        target.adapter(),
        {"tone.amplitude": 2.0, "tone.n_samples": 4800},  # 100 whole periods
        SweepSpec(parameters={"sigma": [0.0, 0.5]}),
        seed=0,
    )
    zero, half = result.evaluations
    assert zero.objective == pytest.approx(2.0, rel=1e-9)  # A^2/2 with no noise
    for ev in result.evaluations:
        manifest = pf.load_manifest(ev.artifacts["manifest_path"])
        assert manifest.open("power") == ev.objective
        assert manifest.seed == 1  # seed="pipeline": the spec's seed, not the harness's
        assert ev.artifacts["output_digests"]["power.value"] == manifest.digests()["power.value"]
        assert ev.provenance["physflow_run_id"] == manifest.run_id
        assert ev.provenance["physflow_spec_digest"].startswith("b3:")
    assert zero.provenance["physflow_misses"] == "3" and half.provenance["physflow_misses"] == "2"


def test_harness_errors_are_clear(tmp_path):
    pipeline = pf.load_spec(DEMO)
    with pytest.raises(HarnessError, match="Did you mean 'power'"):
        pipeline.as_harness_target(objective="powr", store=tmp_path)
    target = pipeline.as_harness_target(objective="power", store=tmp_path)
    with pytest.raises(HarnessError, match=r"node\.field"):
        target.run({"sigma": 0.1}, seed=0)
    with pytest.raises(pf.PipelineError, match="sigmaa"):
        target.run({"noisy.sigmaa": 0.1}, seed=0)
    with pytest.raises(HarnessError, match="not a scalar"):
        pipeline.as_harness_target(objective="tone", store=tmp_path).run({}, seed=0)


@pytest.mark.parametrize("mode", ["harness", "pipeline"])
def test_eval_result_seed_is_the_seed_the_run_used(tmp_path, mode):
    """With seed="pipeline" the adapter reported the harness's seed, not the one the run used.
    The adapter's EvalResult.seed is the seed in the run's manifest; in a sweep (whose
    InMemoryTestHarness rebuilds EvalResult with its own per-evaluation seed, phys-sims-utils
    0.2 core.py) it survives as provenance["physflow_seed"]."""
    target = pf.load_spec(DEMO).as_harness_target(objective="power", store=tmp_path, seed=mode)
    adapter = target.adapter()
    direct = adapter.run({"noisy.sigma": 0.2}, seed=40)
    assert direct.seed == pf.load_manifest(direct.artifacts["manifest_path"]).seed
    assert direct.seed == (1 if mode == "pipeline" else 40)
    result = InMemoryTestHarness().run_sweep(
        adapter, {}, SweepSpec(parameters={"noisy.sigma": SIGMAS}), seed=40
    )
    used = [pf.load_manifest(ev.artifacts["manifest_path"]).seed for ev in result.evaluations]
    assert [int(ev.provenance["physflow_seed"]) for ev in result.evaluations] == used
    assert used == ([1, 1, 1] if mode == "pipeline" else [40, 41, 42])
