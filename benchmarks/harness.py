"""A phys-sims-utils sweep over a 3-stage pipeline (tone -> noise -> power), cold and cached.

Side by side in the same process, per evaluation:

- physflow: ``pipeline.as_harness_target(...)`` under ``PhysPipelineAdapter`` (each evaluation a
  cached physflow run that writes a manifest);
- phys-pipeline 2.0.0 as its users drive it today: a fresh ``DagExecutor`` with
  ``DagCache(DiskCache)`` per evaluation (``DagExecutor.run`` shuts its scheduler down, so it
  cannot be reused), wrapped in a small ``run(config, seed)`` target;
- the same phys-pipeline stages run inside physflow via ``pf.from_phys_pipeline``.

Also: wall time of ``physflow --help`` and of ``physflow run`` on a fully cached spec, next to a
bare ``python -c pass``.

    python benchmarks/harness.py [--points 20] [--samples 65536]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from phys_pipeline import DagCache, DagExecutor, DiskCache, NodeSpec, PipelineStage, StageConfig
from phys_pipeline import StageResult as PPResult
from phys_pipeline.types import SimpleState
from phys_sims_utils.harness import InMemoryTestHarness, SweepSpec
from phys_sims_utils.harness.adapters.phys_pipeline import PhysPipelineAdapter

import physflow as pf
from physflow.stages.demo import NoiseConfig, ToneConfig, add_noise, power, tone

try:
    from benchmarks._common import best_of, write_results
except ImportError:  # run as a script from the benchmarks directory
    from _common import best_of, write_results

ROOT = Path(__file__).resolve().parents[1]


# -- the same physics as phys-pipeline stages ------------------------------------------------------


class PPToneConfig(StageConfig):
    n_samples: int = 65536
    freq_hz: float = 1000.0
    sample_rate_hz: float = 48000.0


class PPTone(PipelineStage[SimpleState, PPToneConfig]):
    def process(self, state, *, policy=None):
        c = self.cfg
        t = np.arange(c.n_samples) / c.sample_rate_hz
        return PPResult(state=SimpleState(payload=np.sin(2 * np.pi * c.freq_hz * t)))


class PPNoiseConfig(StageConfig):
    sigma: float = 0.1
    seed: int = 0


class PPNoise(PipelineStage[SimpleState, PPNoiseConfig]):
    def process(self, state, *, policy=None):
        rng = np.random.default_rng(self.cfg.seed)
        x = state.payload + self.cfg.sigma * rng.standard_normal(state.payload.shape)
        return PPResult(state=SimpleState(payload=x))


class PPPower(PipelineStage[SimpleState, StageConfig]):
    def process(self, state, *, policy=None):
        p = float(np.mean(state.payload**2))
        return PPResult(state=SimpleState(payload=p), metrics={"power": p})


class PhysPipelineTarget:
    """What a phys-pipeline user writes for the harness: DAG + disk cache per evaluation."""

    def __init__(self, root: Path, n_samples: int) -> None:
        self.root, self.n_samples = root, n_samples

    def run(self, config, seed):
        nodes = [
            NodeSpec("tone", stage=PPTone(PPToneConfig(n_samples=self.n_samples))),
            NodeSpec(
                "noisy",
                deps=["tone"],
                stage=PPNoise(PPNoiseConfig(sigma=config["noisy.sigma"], seed=seed)),
            ),
            NodeSpec("power", deps=["noisy"], stage=PPPower(StageConfig())),
        ]
        executor = DagExecutor(cache=DagCache(DiskCache(self.root)))
        result = executor.run(SimpleState(), nodes)
        return {"power": result.results["power"].metrics["power"]}


# -- runs ----------------------------------------------------------------------------------------


def sweep(adapter, points: int) -> tuple[float, list[float]]:
    sigmas = list(np.linspace(0.05, 1.0, points))
    spec = SweepSpec(parameters={"noisy.sigma": sigmas})
    t0 = time.perf_counter()
    result = InMemoryTestHarness().run_sweep(adapter, {}, spec, seed=0)
    return time.perf_counter() - t0, [ev.objective for ev in result.evaluations]


def native_pipeline(n: int) -> pf.Pipeline:
    p = pf.Pipeline("bench", seed=0)
    p.add("tone", tone, ToneConfig(n_samples=n))
    p.add("noisy", add_noise, NoiseConfig(sigma=0.1), signal="tone")
    p.add("power", power, signal="noisy")
    return p


def interop_pipeline(n: int) -> pf.Pipeline:
    p = pf.Pipeline("bench-pp", seed=0)
    p.add("tone", pf.from_phys_pipeline(PPTone(PPToneConfig(n_samples=n))))
    p.add("noisy", pf.from_phys_pipeline(PPNoise(PPNoiseConfig())), state="tone.state")
    p.add("power", pf.from_phys_pipeline(PPPower(StageConfig())), state="noisy.state")
    return p


def measure(points: int, n: int) -> dict:
    out: dict = {"points": points, "samples": n}
    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-harness-"))
    try:
        targets = {
            "physflow": native_pipeline(n).as_harness_target("power", store=tmp / "pf"),
            "physflow_interop": interop_pipeline(n).as_harness_target(
                "power.metrics.power", store=tmp / "pfi"
            ),
            "phys_pipeline": PhysPipelineTarget(tmp / "pp", n),
        }
        for name, target in targets.items():
            key = "power.metrics.power" if name == "physflow_interop" else "power"
            adapter = PhysPipelineAdapter(target, objective_key=key)
            cold, values = sweep(adapter, points)
            warm = min(sweep(adapter, points)[0] for _ in range(3))
            out[name] = {
                "cold_ms_per_eval": 1e3 * cold / points,
                "cached_ms_per_eval": 1e3 * warm / points,
                "mean_objective": float(np.mean(values)),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def cli_times() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-cli-"))
    env_store = ["--store", str(tmp)]

    def run(*args: str) -> None:
        subprocess.run([sys.executable, *args], check=True, capture_output=True, cwd=ROOT)

    try:
        run("-m", "physflow.cli", "run", "configs/demo.yaml", *env_store)
        python = best_of(lambda: run("-c", "pass"), repeat=5)
        help_s = best_of(lambda: run("-m", "physflow.cli", "--help"), repeat=5)
        cached = best_of(
            lambda: run("-m", "physflow.cli", "run", "configs/demo.yaml", "-q", *env_store),
            repeat=5,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "python_startup_ms": 1e3 * python,
        "help_ms": 1e3 * help_s,
        "cached_run_ms": 1e3 * cached,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--samples", type=int, default=65536)
    args = parser.parse_args()
    results = measure(args.points, args.samples)
    results["cli"] = cli_times()
    pfw, ppw = results["physflow"], results["phys_pipeline"]
    pfi = results["physflow_interop"]
    results["ratios"] = {
        "phys_pipeline_cached_over_physflow_cached": ppw["cached_ms_per_eval"]
        / pfw["cached_ms_per_eval"],
        "phys_pipeline_cold_over_physflow_cold": ppw["cold_ms_per_eval"] / pfw["cold_ms_per_eval"],
        "phys_pipeline_cached_over_interop_cached": ppw["cached_ms_per_eval"]
        / pfi["cached_ms_per_eval"],
    }
    print(f"harness sweep, {args.points} points, {args.samples} samples per signal")
    print(f"{'':18} {'cold ms/eval':>13} {'cached ms/eval':>15}")
    for name in ("physflow", "physflow_interop", "phys_pipeline"):
        r = results[name]
        print(f"{name:18} {r['cold_ms_per_eval']:13.2f} {r['cached_ms_per_eval']:15.2f}")
    for key, value in results["ratios"].items():
        print(f"{key}: {value:.1f}x")
    cli = results["cli"]
    print(
        f"python -c pass {cli['python_startup_ms']:.0f} ms; physflow --help "
        f"{cli['help_ms']:.0f} ms; cached physflow run of configs/demo.yaml "
        f"{cli['cached_run_ms']:.0f} ms"
    )
    print(f"written: {write_results('harness', results)}")


if __name__ == "__main__":
    main()
