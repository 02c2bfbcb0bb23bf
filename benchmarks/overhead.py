"""Per-node overhead of the runner: 1,000-node chain and fan-out of trivial stages.

Cold run (empty store) and fully cached re-run, microseconds per node, side by side with
phys-pipeline 2.0.0 (DagExecutor + DagCache(DiskCache)) on the same DAG in the same process.
The cached re-run is measured twice: as it normally happens (replaying the plan record the
previous run left) and with plan records deleted first (one record lookup per node).

    python benchmarks/overhead.py [--nodes 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import physflow as pf

try:
    from benchmarks._common import best_of, write_results
except ImportError:  # run as a script from the benchmarks directory
    from _common import best_of, write_results


class Step(pf.Config):
    delta: float = 1.0


@pf.stage(version="1")
def start(cfg: Step) -> float:
    return cfg.delta


@pf.stage(version="1")
def add(cfg: Step, x: float) -> float:
    return x + cfg.delta


def physflow_dag(shape: str, n: int) -> pf.Pipeline:
    p = pf.Pipeline(f"{shape}-{n}", seed=0)
    p.add("n0", start, Step(delta=0.0))
    for i in range(1, n):
        p.add(f"n{i}", add, Step(delta=float(i)), x="n0" if shape == "fanout" else f"n{i - 1}")
    return p


def own_work_us(n: int) -> float:
    """The trivial stages' own cost per call (subtracted to get the runner's overhead)."""
    cfg = Step(delta=1.0)
    t0 = time.perf_counter()
    for _ in range(n):
        add.func(cfg, 1.0)
    return (time.perf_counter() - t0) / n * 1e6


def bench_physflow(shape: str, n: int, repeat: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="pf-overhead-"))
    pipeline = physflow_dag(shape, n)
    counter = iter(range(10**6))

    def fresh_store():
        store_holder["store"] = pf.Store(root / f"s{next(counter)}")

    store_holder: dict = {}
    cold = best_of(
        lambda: pipeline.run(store=store_holder["store"], write_manifest=True),
        repeat,
        setup=fresh_store,
    )
    warm_store = pf.Store(root / "warm")
    pipeline.run(store=warm_store)
    # A re-run of an unchanged pipeline replays the plan record the previous run left.
    warm = best_of(lambda: pipeline.run(store=warm_store), repeat)
    result = pipeline.run(store=warm_store)
    assert len(result.hits) == n and result.outcome.replayed is not None
    # Without plan records (e.g. after gc) every node is looked up on its own.
    per_node = best_of(
        lambda: pipeline.run(store=warm_store),
        repeat,
        setup=lambda: warm_store.drop_plans(),
    )
    warm_store.drop_plans()
    result = pipeline.run(store=warm_store)
    assert len(result.hits) == n and result.outcome.replayed is None
    shutil.rmtree(root, ignore_errors=True)
    return {
        "cold_us_per_node": cold / n * 1e6,
        "warm_us_per_node": warm / n * 1e6,
        "warm_per_node_lookup_us_per_node": per_node / n * 1e6,
    }


def bench_phys_pipeline(shape: str, n: int, repeat: int) -> dict[str, float] | None:
    try:
        from phys_pipeline import DagCache, DagExecutor, DiskCache, NodeSpec, StageConfig
        from phys_pipeline.types import PipelineStage, SimpleState, StageResult
    except ImportError:
        return None

    class StepConfig(StageConfig):
        delta: float = 1.0

    class AddStage(PipelineStage):
        def process(self, state, *, policy=None):
            if hasattr(state, "inputs"):  # DagState of several deps (not used here)
                state = next(iter(state.inputs.values()))
            return StageResult(state=SimpleState(payload=(state.payload or 0.0) + self.cfg.delta))

    nodes = [NodeSpec(id="n0", op_name="start", version="1", stage=AddStage(StepConfig(delta=0.0)))]
    for i in range(1, n):
        dep = "n0" if shape == "fanout" else f"n{i - 1}"
        nodes.append(
            NodeSpec(
                id=f"n{i}",
                deps=[dep],
                op_name="add",
                version="1",
                stage=AddStage(StepConfig(delta=float(i))),
            )
        )
    root = Path(tempfile.mkdtemp(prefix="pp-overhead-"))
    counter = iter(range(10**6))
    holder: dict = {}

    def fresh():
        holder["cache"] = DagCache(DiskCache(root / f"c{next(counter)}"))

    def run(cache):
        # a DagExecutor shuts its scheduler down after run(): one executor per run
        DagExecutor(cache=cache).run(SimpleState(payload=0.0), nodes)

    cold = best_of(lambda: run(holder["cache"]), repeat, setup=fresh)
    warm_cache = DagCache(DiskCache(root / "warm"))
    run(warm_cache)
    warm = best_of(lambda: run(warm_cache), repeat)
    shutil.rmtree(root, ignore_errors=True)
    return {"cold_us_per_node": cold / n * 1e6, "warm_us_per_node": warm / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = own_work_us(10_000)
    results: dict = {"nodes": args.nodes, "stage_own_work_us": work}
    print(f"trivial stage's own work: {work:.2f} us/call")
    print(
        f"{'dag':8} {'tool':15} {'cold us/node':>13} {'warm us/node':>13} "
        f"{'warm, no plan record':>21}"
    )
    for shape in ("chain", "fanout"):
        ours = bench_physflow(shape, args.nodes, args.repeat)
        theirs = bench_phys_pipeline(shape, args.nodes, args.repeat)
        ours["cold_overhead_us_per_node"] = ours["cold_us_per_node"] - work
        entry = {"physflow": ours, "phys_pipeline": theirs}
        print(
            f"{shape:8} {'physflow':15} {ours['cold_us_per_node']:13.1f} "
            f"{ours['warm_us_per_node']:13.1f} {ours['warm_per_node_lookup_us_per_node']:21.1f}"
        )
        if theirs:
            print(
                f"{shape:8} {'phys-pipeline':15} {theirs['cold_us_per_node']:13.1f} "
                f"{theirs['warm_us_per_node']:13.1f}"
            )
            entry["warm_speedup_vs_phys_pipeline"] = (
                theirs["warm_us_per_node"] / ours["warm_us_per_node"]
            )
            entry["warm_no_plan_record_speedup_vs_phys_pipeline"] = (
                theirs["warm_us_per_node"] / ours["warm_per_node_lookup_us_per_node"]
            )
            entry["cold_speedup_vs_phys_pipeline"] = (
                theirs["cold_us_per_node"] / ours["cold_us_per_node"]
            )
            print(
                f"{shape:8} ratio: warm {entry['warm_speedup_vs_phys_pipeline']:.1f}x "
                f"(no plan record {entry['warm_no_plan_record_speedup_vs_phys_pipeline']:.1f}x), "
                f"cold {entry['cold_speedup_vs_phys_pipeline']:.1f}x faster than phys-pipeline"
            )
        results[shape] = entry
    print("targets: warm <= 30 us/node and >= 5x phys-pipeline warm; cold overhead <= 100 us/node")
    print(f"wrote {write_results('overhead', results)}")


if __name__ == "__main__":
    main()
