"""Per-record cost of the two action-record layouts, through the Store API.

Writes N real action records (put_action), reads them back (get_action: the warm cache-hit
path) and touches them, on a local store with actions="sqlite" and one with actions="files",
in the same run; prints microseconds per record and the ratio files/sqlite. Then runs the
1000-node chain and fan-out of benchmarks/overhead.py cold on a fresh store of each layout
(microseconds per node: the whole runner, of which the record write is one part). Results:
benchmarks/results/action_records.json.

    python benchmarks/action_records.py [--n 2000] [--repeat 3] [--nodes 1000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import blake3

import physflow as pf
from physflow.core.records import ActionRecord


def _records(store: pf.Store, n: int) -> list[ActionRecord]:
    out = []
    for i in range(n):
        entry = store.put_value({"i": i, "power": i * 0.5, "label": f"node{i}"})
        key = "b3:" + blake3.blake3(f"bench {i}".encode()).hexdigest()
        out.append(ActionRecord(key, "bench.stage", "f" * 64, {"value": entry}, time.time()))
    return out


def _time(fn, n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / n * 1e6


def measure(layout: str, n: int, root: Path) -> dict[str, float]:
    store = pf.Store(root / layout, actions=layout)
    records = _records(store, n)
    keys = [r.key for r in records]

    def put() -> None:
        for record in records:
            store.put_action(record)

    def get() -> None:
        for key in keys:
            assert store.get_action(key) is not None

    def touch() -> None:
        for key in keys:
            store.actions.touch(key)

    return {"put_us": _time(put, n), "get_us": _time(get, n), "touch_us": _time(touch, n)}


def cold_runs(nodes: int, repeat: int, root: Path) -> dict[str, dict[str, float]]:
    """Cold-run microseconds per node of overhead.py's DAGs, best of ``repeat``, per layout."""
    try:
        from benchmarks.overhead import physflow_dag
    except ImportError:  # run as a script from the benchmarks directory
        from overhead import physflow_dag

    out: dict[str, dict[str, float]] = {}
    for shape in ("chain", "fanout"):
        pipeline = physflow_dag(shape, nodes)
        pipeline.run(store=pf.Store(root / f"warmup-{shape}"))  # imports, caches
        best = out[shape] = {"sqlite": float("inf"), "files": float("inf")}
        for r in range(repeat):
            for layout in best:
                store = pf.Store(root / f"{shape}-{layout}-{r}", actions=layout)
                t0 = time.perf_counter()
                pipeline.run(store=store)
                best[layout] = min(best[layout], (time.perf_counter() - t0) / nodes * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    scratch = Path(__file__).resolve().parent / ".scratch"
    scratch.mkdir(exist_ok=True)
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        root = Path(tempfile.mkdtemp(prefix="action-records-", dir=scratch))
        try:
            for layout in ("sqlite", "files"):
                got = measure(layout, args.n, root)
                mine = best.setdefault(layout, got)
                for k, v in got.items():
                    mine[k] = min(mine[k], v)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{args.n} records, best of {args.repeat} (microseconds per record)")
    print(f"{'':8} {'sqlite':>9} {'files':>9} {'files/sqlite':>13}")
    ratios = {}
    for op in ("put_us", "get_us", "touch_us"):
        s, f = best["sqlite"][op], best["files"][op]
        ratios[op] = f / s
        print(f"{op[:-3]:8} {s:9.1f} {f:9.1f} {f / s:12.1f}x")
    root = Path(tempfile.mkdtemp(prefix="action-records-cold-", dir=scratch))
    try:
        cold = cold_runs(args.nodes, args.repeat, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"cold run, {args.nodes} nodes, best of {args.repeat} (microseconds per node)")
    for shape, got in cold.items():
        s, f = got["sqlite"], got["files"]
        print(f"{shape:8} {s:9.1f} {f:9.1f} {f / s:12.1f}x")
    out = Path(__file__).resolve().parent / "results" / "action_records.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "n": args.n,
                "repeat": args.repeat,
                "best_us": best,
                "files_over_sqlite": ratios,
                "cold_run_us_per_node": cold,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
