"""A 1,000-point scan of a 4-stage pipeline: cold, fully cached, and extended by 10 points.

physflow: ``Pipeline.scan({"channel.snr_db": [...]}, collect=["ber"])`` -> xarray.Dataset.
phys-pipeline 2.0.0, side by side in the same process on the same work: ``expand_sweep`` +
``DagExecutor`` + ``DagCache(DiskCache)``, then the metric of each point gathered into an
xarray.Dataset as well.

``expand_sweep`` removes the swept node and leaves every downstream dependency pointing at the
removed id, so ``build_dag`` fails with ``DagMissingDependencyError``. The workaround a user has
to write (done here): after expanding, clone the downstream chain (detect -> ber) once per
expanded channel node, rewiring each clone's deps to that clone, and drop the original
downstream nodes. The per-point metric is then read from ``result.results[f"ber__{i}"]``.

    python benchmarks/scan.py [--points 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import physflow as pf

try:
    from benchmarks._common import best_of, write_results
except ImportError:  # run as a script from the benchmarks directory
    from _common import best_of, write_results

N_BITS = 256


class SourceCfg(pf.Config):
    n: int = N_BITS


class ChannelCfg(pf.Config):
    snr_db: float = 6.0


class DetectCfg(pf.Config):
    threshold: float = 0.0


@pf.stage(version="1")
def source(cfg: SourceCfg, *, rng: np.random.Generator) -> np.ndarray:
    return 2.0 * rng.integers(0, 2, cfg.n) - 1.0


@pf.stage(version="1")
def channel(cfg: ChannelCfg, x: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    return x + 10 ** (-cfg.snr_db / 20) * rng.standard_normal(x.shape)


@pf.stage(version="1")
def detect(cfg: DetectCfg, y: np.ndarray) -> np.ndarray:
    return np.where(y > cfg.threshold, 1.0, -1.0)


@pf.stage(version="1")
def ber(x: np.ndarray, decided: np.ndarray) -> float:
    return float(np.mean(x != decided))


def physflow_pipeline() -> pf.Pipeline:
    p = pf.Pipeline("scan-bench", seed=1)
    p.add("source", source, SourceCfg())
    p.add("channel", channel, ChannelCfg(), x="source")
    p.add("detect", detect, DetectCfg(), y="channel")
    p.add("ber", ber, x="source", decided="detect")
    return p


def bench_physflow(snrs: list[float], extra: list[float], repeat: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="pf-scan-"))
    p = physflow_pipeline()
    counter = iter(range(10**6))
    holder: dict = {}

    def fresh() -> None:
        holder["store"] = pf.Store(root / f"s{next(counter)}")

    def scan(store, values):
        return p.scan({"channel.snr_db": values}, collect=["ber"], store=store)

    scan(pf.Store(root / "warmup"), snrs[:10])  # imports (xarray, dask) outside the timings
    cold = best_of(lambda: scan(holder["store"], snrs), repeat, setup=fresh)
    warm_store = pf.Store(root / "warm")
    scan(warm_store, snrs)
    warm = best_of(lambda: scan(warm_store, snrs), max(repeat, 7))
    ds = scan(warm_store, snrs)
    assert ds.attrs["misses"] == 0 and ds.sizes["channel.snr_db"] == len(snrs)
    # split of the cached re-run: plan + cache lookups + manifest, then the Dataset
    from physflow.scans.run import run_scan

    holder["result"] = None

    def run_only() -> None:
        holder["result"] = run_scan(p, {"channel.snr_db": snrs}, ["ber"], store=warm_store)

    run_only_s = best_of(run_only, max(repeat, 7))
    dataset_s = best_of(lambda: holder["result"].dataset(), max(repeat, 5))
    t0 = time.perf_counter()
    ext = scan(warm_store, snrs + extra)
    extended = time.perf_counter() - t0
    # channel + detect run for each new point; ber may be a hit (early cut-off: at high SNR
    # the decisions equal another point's, so ber's inputs have the same digests)
    assert 2 * len(extra) <= ext.attrs["misses"] <= 3 * len(extra), ext.attrs
    shutil.rmtree(root, ignore_errors=True)
    n = len(snrs)
    return {
        "cold_s": cold,
        "cached_s": warm,
        "cold_us_per_point": cold / n * 1e6,
        "cached_us_per_point": warm / n * 1e6,
        "extended_s": extended,
        "ber_at_max_snr": float(ds["ber"].values[-1]),
        "extended_misses": ext.attrs["misses"],
        "cached_run_and_manifest_us_per_point": run_only_s / n * 1e6,
        "cached_dataset_us_per_point": dataset_s / n * 1e6,
    }


def bench_phys_pipeline(snrs: list[float], extra: list[float], repeat: int) -> dict | None:
    try:
        from phys_pipeline import (
            DagCache,
            DagExecutor,
            DiskCache,
            NodeSpec,
            StageConfig,
            SweepSpec,
            expand_sweep,
        )
        from phys_pipeline.types import PipelineStage, SimpleState, StageResult
    except ImportError:
        return None
    import xarray as xr

    class SourceConfig(StageConfig):
        n: int = N_BITS
        seed: int = 1

    class ChannelConfig(StageConfig):
        snr_db: float = 6.0
        seed: int = 2

    class DetectConfig(StageConfig):
        threshold: float = 0.0

    class Source(PipelineStage):
        def process(self, state, *, policy=None):
            rng = np.random.default_rng(self.cfg.seed)
            return StageResult(state=SimpleState(2.0 * rng.integers(0, 2, self.cfg.n) - 1.0))

    class Channel(PipelineStage):
        def process(self, state, *, policy=None):
            rng = np.random.default_rng(self.cfg.seed)
            x = state.payload
            sigma = 10 ** (-self.cfg.snr_db / 20)
            return StageResult(state=SimpleState(x + sigma * rng.standard_normal(x.shape)))

    class Detect(PipelineStage):
        def process(self, state, *, policy=None):
            return StageResult(
                state=SimpleState(np.where(state.payload > self.cfg.threshold, 1.0, -1.0))
            )

    class Ber(PipelineStage):
        def process(self, state, *, policy=None):
            x, decided = (state.inputs[k].payload for k in sorted(state.inputs))
            value = float(np.mean(x != decided))
            return StageResult(state=SimpleState(value), metrics={"ber": value})

    class BerConfig(StageConfig):
        pass

    def nodes_for(values: list[float]) -> tuple[list, list[str]]:
        base = [
            NodeSpec(id="source", op_name="source", version="1", stage=Source(SourceConfig())),
            NodeSpec(
                id="channel",
                deps=["source"],
                op_name="channel",
                version="1",
                stage=Channel(ChannelConfig()),
            ),
            NodeSpec(
                id="detect",
                deps=["channel"],
                op_name="detect",
                version="1",
                stage=Detect(DetectConfig()),
            ),
            NodeSpec(
                id="ber",
                deps=["detect", "source"],
                op_name="ber",
                version="1",
                stage=Ber(BerConfig()),
            ),
        ]
        expanded = expand_sweep(base, [SweepSpec("channel", {"snr_db": values})])
        # the workaround: expand_sweep dropped "channel" but detect still depends on it;
        # clone detect -> ber per expanded channel node and drop the dangling originals.
        kept = [n for n in expanded if n.id not in ("detect", "ber")]
        channels = [n for n in kept if n.id.startswith("channel__")]
        out, ber_ids = list(kept), []
        for i, ch in enumerate(channels):
            out.append(
                NodeSpec(
                    id=f"detect__{i}",
                    deps=[ch.id],
                    op_name="detect",
                    version="1",
                    stage=Detect(DetectConfig()),
                )
            )
            out.append(
                NodeSpec(
                    id=f"ber__{i}",
                    deps=[f"detect__{i}", "source"],
                    op_name="ber",
                    version="1",
                    stage=Ber(BerConfig()),
                )
            )
            ber_ids.append(f"ber__{i}")
        return out, ber_ids

    def run(cache, values):
        nodes, ber_ids = nodes_for(values)
        result = DagExecutor(cache=cache).run(SimpleState(None), nodes)  # one executor per run
        bers = [
            result.results[b].metrics.get("ber", result.results[b].state.payload) for b in ber_ids
        ]
        return xr.Dataset(
            {"ber": (("channel.snr_db",), np.asarray(bers))}, coords={"channel.snr_db": values}
        )

    root = Path(tempfile.mkdtemp(prefix="pp-scan-"))
    counter = iter(range(10**6))
    holder: dict = {}

    def fresh() -> None:
        holder["cache"] = DagCache(DiskCache(root / f"c{next(counter)}"))

    cold = best_of(lambda: run(holder["cache"], snrs), repeat, setup=fresh)
    warm_cache = DagCache(DiskCache(root / "warm"))
    run(warm_cache, snrs)
    warm = best_of(lambda: run(warm_cache, snrs), repeat)
    ds = run(warm_cache, snrs)
    t0 = time.perf_counter()
    run(warm_cache, snrs + extra)
    extended = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    n = len(snrs)
    return {
        "cold_s": cold,
        "cached_s": warm,
        "cold_us_per_point": cold / n * 1e6,
        "cached_us_per_point": warm / n * 1e6,
        "extended_s": extended,
        "ber_at_max_snr": float(ds["ber"].values[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    snrs = np.linspace(-2.0, 12.0, args.points).tolist()
    extra = (12.0 + np.arange(1, 11) * 0.05).tolist()  # extending the axis by 10 points
    ours = bench_physflow(snrs, extra, args.repeat)
    theirs = bench_phys_pipeline(snrs, extra, args.repeat)
    results: dict = {
        "points": args.points,
        "stages": 4,
        "bits_per_point": N_BITS,
        "physflow": ours,
        "phys_pipeline": theirs,
    }
    print(f"{args.points}-point scan, 4 stages ({N_BITS} bits per point)")
    print(f"{'tool':15} {'cold us/pt':>11} {'cached us/pt':>13} {'+10 points s':>13}")
    for name, r in (("physflow", ours), ("phys-pipeline", theirs)):
        if r:
            print(
                f"{name:15} {r['cold_us_per_point']:11.1f} {r['cached_us_per_point']:13.1f} "
                f"{r['extended_s']:13.3f}"
            )
    print(
        f"physflow cached re-run split: plan + lookups + manifest "
        f"{ours['cached_run_and_manifest_us_per_point']:.1f} us/pt, Dataset "
        f"{ours['cached_dataset_us_per_point']:.1f} us/pt"
    )
    if theirs:
        results["cached_speedup_vs_phys_pipeline"] = theirs["cached_s"] / ours["cached_s"]
        results["cold_speedup_vs_phys_pipeline"] = theirs["cold_s"] / ours["cold_s"]
        results["extend_speedup_vs_phys_pipeline"] = theirs["extended_s"] / ours["extended_s"]
        print(
            f"ratios: cached {results['cached_speedup_vs_phys_pipeline']:.1f}x, cold "
            f"{results['cold_speedup_vs_phys_pipeline']:.1f}x, +10 points "
            f"{results['extend_speedup_vs_phys_pipeline']:.1f}x faster than phys-pipeline"
        )
    target = 200.0
    results["target_cached_us_per_point"] = target
    results["meets_target"] = ours["cached_us_per_point"] <= target
    print(
        f"target: cached re-run <= {target:.0f} us/point including the Dataset: "
        f"{'met' if results['meets_target'] else 'NOT met'}"
    )
    print(f"wrote {write_results('scan', results)}")


if __name__ == "__main__":
    main()
