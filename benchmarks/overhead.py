"""Per-node overhead of the runner: 1,000-node chain and fan-out of trivial stages.

Cold run (empty store) and fully cached re-run, microseconds per node, side by side with
phys-pipeline 2.0.0 (DagExecutor + DagCache(DiskCache)) on the same DAG in the same process.
The cached re-run is measured three ways: as it normally happens (replaying the plan record the
previous run left), with the Pipeline rebuilt first (what re-running a script pays: build +
plan + run), and with plan records deleted first (one record lookup per node). The headline
ratio (rebuilt vs phys-pipeline's warm re-run) is measured again in alternating pairs, so
machine noise falls on both tools alike.

    python benchmarks/overhead.py [--nodes 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
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


def physflow_dag(shape: str, n: int, last_delta: float | None = None) -> pf.Pipeline:
    """``last_delta`` changes the last node's config (a one-node edit)."""
    p = pf.Pipeline(f"{shape}-{n}", seed=0)
    p.add("n0", start, Step(delta=0.0))
    for i in range(1, n):
        delta = last_delta if i == n - 1 and last_delta is not None else float(i)
        p.add(f"n{i}", add, Step(delta=delta), x="n0" if shape == "fanout" else f"n{i - 1}")
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
    # What a user re-running a script pays: the Pipeline is built again, then run.
    rebuilt = best_of(lambda: physflow_dag(shape, n).run(store=warm_store), repeat)
    result = pipeline.run(store=warm_store)
    assert len(result.hits) == n and result.outcome.replayed
    # Without plan records (e.g. after gc) every node is looked up on its own.
    per_node = best_of(
        lambda: pipeline.run(store=warm_store),
        repeat,
        setup=lambda: warm_store.drop_plans(),
    )
    warm_store.drop_plans()
    result = pipeline.run(store=warm_store)
    assert len(result.hits) == n and result.outcome.replayed is False
    # One node edited (a new value each time): n - 1 hits and one miss.
    edits = iter(range(10**6))
    edited: dict = {}

    def edit() -> None:
        edited["p"] = physflow_dag(shape, n, last_delta=1e6 + next(edits))

    one_changed = best_of(lambda: edited["p"].run(store=warm_store), repeat, setup=edit)
    result = edited["p"].run(store=warm_store)
    assert len(result.hits) == n and result.outcome.replayed
    shutil.rmtree(root, ignore_errors=True)
    return {
        "cold_us_per_node": cold / n * 1e6,
        "warm_us_per_node": warm / n * 1e6,
        "warm_rebuilt_us_per_node": rebuilt / n * 1e6,
        "warm_per_node_lookup_us_per_node": per_node / n * 1e6,
        "one_node_changed_us_per_node": one_changed / n * 1e6,
    }


def phys_pipeline_parts(shape: str, n: int) -> tuple[Callable, Callable] | None:
    """phys-pipeline's version of the DAG: ``(dag(last_delta=None), run(cache, spec=None))``."""
    try:
        from phys_pipeline import DagExecutor, NodeSpec, StageConfig
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

    def dag(last_delta: float | None = None) -> list:
        nodes = [
            NodeSpec(id="n0", op_name="start", version="1", stage=AddStage(StepConfig(delta=0.0)))
        ]
        for i in range(1, n):
            dep = "n0" if shape == "fanout" else f"n{i - 1}"
            delta = last_delta if i == n - 1 and last_delta is not None else float(i)
            nodes.append(
                NodeSpec(
                    id=f"n{i}",
                    deps=[dep],
                    op_name="add",
                    version="1",
                    stage=AddStage(StepConfig(delta=delta)),
                )
            )
        return nodes

    default = dag()

    def run(cache, spec=None) -> None:
        # a DagExecutor shuts its scheduler down after run(): one executor per run
        DagExecutor(cache=cache).run(SimpleState(payload=0.0), spec or default)

    return dag, run


def bench_phys_pipeline(shape: str, n: int, repeat: int) -> dict[str, float] | None:
    parts = phys_pipeline_parts(shape, n)
    if parts is None:
        return None
    from phys_pipeline import DagCache, DiskCache

    dag, run = parts
    root = Path(tempfile.mkdtemp(prefix="pp-overhead-"))
    counter = iter(range(10**6))
    holder: dict = {}

    def fresh():
        holder["cache"] = DagCache(DiskCache(root / f"c{next(counter)}"))

    cold = best_of(lambda: run(holder["cache"]), repeat, setup=fresh)
    warm_cache = DagCache(DiskCache(root / "warm"))
    run(warm_cache)
    warm = best_of(lambda: run(warm_cache), repeat)
    edits = iter(range(10**6))

    def edit() -> None:
        holder["edited"] = dag(last_delta=1e6 + next(edits))

    one_changed = best_of(lambda: run(warm_cache, holder["edited"]), repeat, setup=edit)
    shutil.rmtree(root, ignore_errors=True)
    return {
        "cold_us_per_node": cold / n * 1e6,
        "warm_us_per_node": warm / n * 1e6,
        "one_node_changed_us_per_node": one_changed / n * 1e6,
    }


def paired_rebuilt(shape: str, n: int, repeat: int) -> dict[str, float] | None:
    """physflow's warm re-run with the Pipeline rebuilt and phys-pipeline's warm re-run, timed
    alternately (pairs), so a burst of machine noise hits both tools rather than one block."""
    parts = phys_pipeline_parts(shape, n)
    if parts is None:
        return None
    from phys_pipeline import DagCache, DiskCache

    _, run = parts
    root = Path(tempfile.mkdtemp(prefix="paired-overhead-"))
    store, cache = pf.Store(root / "pf"), DagCache(DiskCache(root / "pp"))
    physflow_dag(shape, n).run(store=store)
    run(cache)
    ours, theirs, ratios = [], [], []
    for _ in range(3 * repeat):
        ours.append(best_of(lambda: physflow_dag(shape, n).run(store=store), 1))
        theirs.append(best_of(lambda: run(cache), 1))
        ratios.append(theirs[-1] / ours[-1])
    shutil.rmtree(root, ignore_errors=True)
    return {
        "physflow_warm_rebuilt_us_per_node": min(ours) / n * 1e6,
        "phys_pipeline_warm_us_per_node": min(theirs) / n * 1e6,
        "ratio_of_best": min(theirs) / min(ours),
        "median_pair_ratio": statistics.median(ratios),
        "pairs": len(ratios),
    }


COLUMNS = (
    ("cold_us_per_node", "cold"),
    ("warm_us_per_node", "warm"),
    ("warm_rebuilt_us_per_node", "warm, rebuilt"),
    ("warm_per_node_lookup_us_per_node", "warm, no plan rec"),
    ("one_node_changed_us_per_node", "1 node changed"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = own_work_us(10_000)
    results: dict = {"nodes": args.nodes, "stage_own_work_us": work}
    print(f"trivial stage's own work: {work:.2f} us/call; all figures in us/node")
    print(f"{'dag':8} {'tool':15}" + "".join(f"{label:>19}" for _, label in COLUMNS))
    for shape in ("chain", "fanout"):
        ours = bench_physflow(shape, args.nodes, args.repeat)
        theirs = bench_phys_pipeline(shape, args.nodes, args.repeat)
        ours["cold_overhead_us_per_node"] = ours["cold_us_per_node"] - work
        entry: dict = {"physflow": ours, "phys_pipeline": theirs}
        for tool, row in (("physflow", ours), ("phys-pipeline", theirs)):
            if row:
                cells = "".join(
                    f"{row[key]:19.1f}" if key in row else f"{'-':>19}" for key, _ in COLUMNS
                )
                print(f"{shape:8} {tool:15}{cells}")
        if theirs:
            speedups = {
                "warm": theirs["warm_us_per_node"] / ours["warm_us_per_node"],
                "warm_rebuilt": theirs["warm_us_per_node"] / ours["warm_rebuilt_us_per_node"],
                "warm_no_plan_record": theirs["warm_us_per_node"]
                / ours["warm_per_node_lookup_us_per_node"],
                "one_node_changed": theirs["one_node_changed_us_per_node"]
                / ours["one_node_changed_us_per_node"],
                "cold": theirs["cold_us_per_node"] / ours["cold_us_per_node"],
            }
            entry.update({f"{k}_speedup_vs_phys_pipeline": v for k, v in speedups.items()})
            print(
                f"{shape:8} physflow faster than phys-pipeline: "
                + ", ".join(f"{k.replace('_', ' ')} {v:.1f}x" for k, v in speedups.items())
            )
        paired = paired_rebuilt(shape, args.nodes, args.repeat)
        if paired:
            entry["paired_warm_rebuilt"] = paired
            print(
                f"{shape:8} paired ({paired['pairs']} alternating pairs): physflow rebuilt "
                f"{paired['physflow_warm_rebuilt_us_per_node']:.1f} vs phys-pipeline warm "
                f"{paired['phys_pipeline_warm_us_per_node']:.1f} us/node: "
                f"{paired['ratio_of_best']:.1f}x (best vs best), "
                f"median pair {paired['median_pair_ratio']:.1f}x"
            )
        results[shape] = entry
    print(
        "targets: warm <= 30 us/node and >= 5x phys-pipeline warm (also when the script rebuilds "
        "the Pipeline); cold overhead <= 100 us/node (cold minus the stage's own work)"
    )
    print(f"wrote {write_results('overhead', results)}")


if __name__ == "__main__":
    main()
