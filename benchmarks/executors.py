"""Executors: per-node overhead (1,000 trivial nodes) next to dask's own overhead, and the
speedup of 16 CPU-bound nodes (numpy that releases the GIL, Python that holds it) over serial.

All numbers come from the same run on the same machine; the dask LocalCluster (2 worker
processes, 1 thread each) is shared by physflow's DaskExecutor and dask's own delayed API.

    python benchmarks/executors.py [--nodes 1000] [--work-s 0.5] [--tasks 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # workers import benchmark stages as ``executor_stages``
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p
)

import executor_stages as bs  # noqa: E402

import physflow as pf  # noqa: E402

try:
    from benchmarks._common import write_results
except ImportError:  # run as a script from the benchmarks directory
    from _common import write_results


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def trivial_pipeline(n: int) -> pf.Pipeline:
    p = pf.Pipeline(f"trivial-{n}", seed=0)
    for i in range(n):
        p.add(f"t{i}", bs.trivial, bs.Index(i=i))
    return p


def overhead(n: int, executors: dict, client, root: Path, repeat: int) -> dict:
    """Cold (empty store) and warm (all hits) microseconds per node for each executor."""
    import dask

    pipeline = trivial_pipeline(n)
    cold: dict[str, float] = {}
    warm: dict[str, float] = {}
    for r in range(repeat):  # interleaved, so load from other jobs hits every executor alike
        for name, executor in executors.items():
            store = pf.Store(root / f"overhead-{name}-{r}")
            t = timed(lambda ex=executor, s=store: pipeline.run(store=s, executor=ex, workers=2))
            cold[name] = min(cold.get(name, t), t)
            t = timed(lambda ex=executor, s=store: pipeline.run(store=s, executor=ex, workers=2))
            warm[name] = min(warm.get(name, t), t)
    out: dict = {
        name: {"cold_us_per_node": cold[name] / n * 1e6, "warm_us_per_node": warm[name] / n * 1e6}
        for name in executors
    }

    def dask_delayed(scheduler):
        tasks = [dask.delayed(bs.plain, pure=False)(i) for i in range(n)]
        return dask.compute(*tasks, scheduler=scheduler)

    out["dask.delayed synchronous"] = {
        "cold_us_per_node": min(timed(lambda: dask_delayed("synchronous")) for _ in range(3))
        / n
        * 1e6
    }
    out["dask.delayed distributed"] = {
        "cold_us_per_node": min(timed(lambda: dask_delayed(client)) for _ in range(repeat))
        / n
        * 1e6
    }
    return out


def calibrate(stage, target_s: float) -> int:
    """Problem size that makes one call of ``stage`` take about ``target_s`` seconds."""
    size = 20 if stage is bs.numpy_work else 200_000

    def call_time(n: int) -> float:
        return min(timed(lambda: stage.func(bs.Work(i=0, size=n))) for _ in range(2))

    while (t := call_time(size)) < 0.05:
        size *= 4
    size = max(1, int(size * target_s / t))
    return max(1, int(size * target_s / call_time(size)))  # one correction at full size


def speedup(
    stage, size: int, tasks: int, executors: dict, workers: int, root: Path, repeat: int
) -> dict:
    """Wall time of ``tasks`` independent calls per executor (best of ``repeat``, fresh stores),
    next to a raw ``multiprocessing`` pool running the same functions without physflow."""
    import multiprocessing as mp

    p = pf.Pipeline(f"{stage.name}-{tasks}", seed=0)
    for i in range(tasks):
        p.add(f"w{i}", stage, bs.Work(i=i, size=size))
    best: dict[str, float] = {}
    counter = iter(range(10**6))
    for _ in range(repeat):  # interleaved, so load from other jobs hits every executor alike
        for name, executor in executors.items():
            store = pf.Store(root / f"speed-{stage.func.__name__}-{name}-{next(counter)}")
            res = None

            def run(ex=executor, s=store):
                nonlocal res
                res = p.run(store=s, executor=ex, workers=workers)

            t = timed(run)
            best[name] = min(best.get(name, t), t)
            assert res is not None and len(res.misses) == tasks, "every node must execute"
    out: dict = {name: {"seconds": t} for name, t in best.items()}
    args = [(stage.func.__name__, i, size) for i in range(tasks)]
    with mp.get_context("forkserver").Pool(workers) as pool:
        pool.starmap(bs.raw_call, args[:workers], chunksize=1)  # warm the workers up
        out["raw multiprocessing.Pool"] = {
            "seconds": min(
                timed(lambda: pool.starmap(bs.raw_call, args, chunksize=1)) for _ in range(repeat)
            )
        }
    for name in out:
        out[name]["speedup_vs_serial"] = out["serial"]["seconds"] / out[name]["seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--work-s", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for speedups")
    parser.add_argument("--skip-speedup", action="store_true", help="only measure overheads")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pf-executors-"))
    results: dict = {
        "nodes": args.nodes,
        "tasks": args.tasks,
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }

    t0 = time.perf_counter()
    dask_ex = pf.DaskExecutor(workers=args.workers, threads_per_worker=1)
    client = dask_ex.connect()
    results["dask_cluster_start_s"] = time.perf_counter() - t0
    executors = {
        "serial": "serial",
        "threads": pf.executors.local.ThreadExecutor(args.workers),
        "processes": pf.executors.processes.ProcessExecutor(args.workers),
        "dask": dask_ex,
    }
    try:
        results["overhead"] = overhead(args.nodes, executors, client, root, 3)
        print(f"\nper-node cost, {args.nodes} trivial independent nodes (us/node)")
        print(f"{'executor':28} {'cold':>10} {'warm (all hits)':>16}")
        for name, row in results["overhead"].items():
            warm = row.get("warm_us_per_node")
            print(
                f"{name:28} {row['cold_us_per_node']:10.1f} "
                f"{(f'{warm:.1f}' if warm is not None else '-'):>16}"
            )
        sync = results["overhead"]["dask.delayed synchronous"]["cold_us_per_node"]
        dist = results["overhead"]["dask.delayed distributed"]["cold_us_per_node"]
        results["overhead_ratios"] = {
            "serial_cold_vs_dask_sync": results["overhead"]["serial"]["cold_us_per_node"] / sync,
            "dask_executor_cold_vs_dask_distributed": results["overhead"]["dask"][
                "cold_us_per_node"
            ]
            / dist,
            "processes_cold_vs_dask_distributed": results["overhead"]["processes"][
                "cold_us_per_node"
            ]
            / dist,
        }
        print(
            "ratios (>1 = physflow slower):",
            {k: round(v, 2) for k, v in results["overhead_ratios"].items()},
        )

        for stage in () if args.skip_speedup else (bs.numpy_work, bs.python_work):
            size = calibrate(stage, args.work_s)
            row = speedup(stage, size, args.tasks, executors, args.workers, root, args.repeat)
            results[f"speedup_{stage.func.__name__}"] = {"size": size, **row}
            print(f"\n{args.tasks} x ~{args.work_s}s {stage.func.__name__} (size {size})")
            for name, r in row.items():
                print(f"{name:26} {r['seconds']:7.2f} s   speedup {r['speedup_vs_serial']:.2f}x")
        print(
            f"\ntarget: processes and dask >= 1.8x over serial on {os.cpu_count()} cores; the "
            "raw multiprocessing.Pool row is this machine's ceiling, measured in the same run"
        )
        results["loadavg"] = os.getloadavg()
        print(f"load average: {results['loadavg']}")
    finally:
        dask_ex.close()
        shutil.rmtree(root, ignore_errors=True)
    name = "executors-overhead" if args.skip_speedup else "executors"
    print(f"wrote {write_results(name, results)}")


if __name__ == "__main__":
    import physflow.executors.local
    import physflow.executors.processes

    main()
