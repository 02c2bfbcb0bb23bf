"""Per-node overhead of this checkout against another checkout of physflow, side by side.

A regression check for kernel changes: both checkouts run the same measurement (the 1,000-node
chain and fan-out of ``benchmarks/overhead.py``: cold on fresh stores, warm re-runs of the same
Pipeline, warm re-runs of a rebuilt Pipeline, one node's config changed) in fresh subprocesses,
alternating old/new so the machine's noise falls on both. Each process reports its best time per
figure; the table shows the median over rounds and the ratio new/old (< 1: this checkout faster).

    git worktree add /tmp/old <commit>
    python benchmarks/overhead_vs_commit.py /tmp/old [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from _common import write_results  # noqa: E402

# Runs inside each subprocess, with the checkout under test first on sys.path.
PROBE = r"""
import gc, json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import overhead as o
import physflow as pf
assert pf.__file__.startswith(sys.argv[2]), pf.__file__

def best(fn, n, setup=None):
    times = []
    for i in range(n):
        arg = setup(i) if setup else None
        gc.collect(); t = time.perf_counter(); fn(arg); times.append(time.perf_counter() - t)
    return min(times) * 1e3  # us/node for 1,000 nodes

root = Path(tempfile.mkdtemp())
out = {}
for shape in ("chain", "fanout"):
    p = o.physflow_dag(shape, 1000)
    out[shape + ".cold"] = best(lambda s: p.run(store=s), 5,
                                lambda i: pf.Store(root / f"{shape}{i}"))
    warm = pf.Store(root / f"{shape}0")
    out[shape + ".warm"] = best(lambda _: p.run(store=warm), 15)
    out[shape + ".rebuilt"] = best(lambda _: o.physflow_dag(shape, 1000).run(store=warm), 7)
    out[shape + ".changed"] = best(lambda q: q.run(store=warm), 5,
                                   lambda i: o.physflow_dag(shape, 1000, last_delta=1e3 + i))
print(json.dumps(out))
"""


def probe(checkout: Path, bench_dir: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    args = [sys.executable, "-c", PROBE, str(bench_dir), str(checkout / "physflow")]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, cwd=checkout)
    if done.returncode:
        sys.exit(f"the probe failed in {checkout}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="another checkout of physflow (a worktree)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    old = args.old.resolve()
    runs: dict[str, list[dict[str, float]]] = {"new": [], "old": []}
    for _ in range(args.rounds):
        runs["new"].append(probe(ROOT, HERE))
        runs["old"].append(probe(old, old / "benchmarks"))
    table = {}
    print(f"{'us/node (median of per-process best)':40} {'new':>8} {'old':>8} {'new/old':>8}")
    for name in runs["new"][0]:
        new = statistics.median(r[name] for r in runs["new"])
        was = statistics.median(r[name] for r in runs["old"])
        table[name] = {"new": new, "old": was, "ratio": new / was}
        print(f"{name:40} {new:8.1f} {was:8.1f} {new / was:8.2f}")
    results = {"old": str(old), "rounds": args.rounds, "figures": table, "runs": runs}
    print(f"results: {write_results('overhead_vs_commit', results)}")


if __name__ == "__main__":
    main()
