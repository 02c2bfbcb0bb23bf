"""Optical link pack: configs/optical_link.yaml and configs/optical_ber_scan.yaml, cold and warm.

Peer: the same stage functions called directly in a plain Python loop (no cache, no store,
what a hand-written script does); the scan peer recomputes the transmitter at every point,
as a naive loop would. Ratios are physflow time / peer time (cold: the framework's overhead;
warm: the speed-up of a cached re-run).

    python benchmarks/optical.py          # writes benchmarks/results/optical.json
"""

from __future__ import annotations

import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_results  # noqa: E402

LINK = ROOT / "configs" / "optical_link.yaml"
SCAN = ROOT / "configs" / "optical_ber_scan.yaml"


def _direct(pipeline, values=None):
    """Run the four stages of a loaded link spec as plain function calls."""
    from physflow.pipeline.rng import node_generator

    p = pipeline.with_values(values or {})
    n = p.nodes
    out = n["tx"].stage.func(n["tx"].config, rng=node_generator(p.seed, "tx"))
    ch = n["channel"].stage.func(
        n["channel"].config, out["waveform"], out["info"], rng=node_generator(p.seed, "channel")
    )
    sym = n["rx"].stage.func(n["rx"].config, ch["waveform"], ch["info"], out["symbols"])
    return n["metrics"].stage.func(
        n["metrics"].config,
        sym,
        out["bits"],
        out["symbols"],
        ch["info"],
        rng=node_generator(p.seed, "metrics"),
    )


def bench_link(repeat: int = 3) -> dict:
    import physflow as pf

    pipeline = pf.load_spec(LINK)
    _direct(pipeline)  # warm imports and FFT plans for both sides
    cold, warm, stages = [], [], None
    for _ in range(repeat):
        root = tempfile.mkdtemp(prefix="pf-optical-")
        try:
            t0 = time.perf_counter()
            res = pipeline.run(store=root).raise_on_failure()
            cold.append(time.perf_counter() - t0)
            if stages is None or cold[-1] == min(cold):
                stages = {rec.id: rec.duration_s for rec in res.manifest.nodes}
            for _ in range(5):
                t0 = time.perf_counter()
                again = pipeline.run(store=root)
                warm.append(time.perf_counter() - t0)
                assert again.misses == []
            warm_stages = {rec.id: rec.status for rec in again.manifest.nodes}
        finally:
            shutil.rmtree(root, ignore_errors=True)
    direct = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _direct(pipeline)
        direct.append(time.perf_counter() - t0)
    return {
        "cold_s": min(cold),
        "warm_s": min(warm),
        "stage_s": stages,
        "warm_status": warm_stages,
        "peer_direct_s": min(direct),
        "ratio_cold_vs_direct": min(cold) / min(direct),
        "ratio_warm_vs_direct": min(warm) / min(direct),
    }


def bench_scan() -> dict:
    from physflow.pipeline.spec import load_spec_with_scan

    pipeline, scan = load_spec_with_scan(SCAN)
    axes = scan.axes
    warmup = tempfile.mkdtemp(prefix="pf-optical-warmup-")
    try:  # imports (xarray, scipy) and FFT plans are paid here, not by either side below
        pipeline.scan({k: v[:1] for k, v in axes.items()}, collect=scan.collect, store=warmup)
        _direct(pipeline)
    finally:
        shutil.rmtree(warmup, ignore_errors=True)
    root = tempfile.mkdtemp(prefix="pf-optical-scan-")
    try:
        t0 = time.perf_counter()
        ds = pipeline.scan(axes, collect=scan.collect, store=root)
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(3):
            t0 = time.perf_counter()
            again = pipeline.scan(axes, collect=scan.collect, store=root)
            warm.append(time.perf_counter() - t0)
            assert again.attrs["misses"] == 0
        import json

        manifest = json.loads(Path(ds.attrs["manifest_path"]).read_text())
        per_stage: dict[str, list[float]] = {}
        for rec in manifest["nodes"]:
            if rec["status"] == "miss":
                per_stage.setdefault(rec["stage"].split(":")[-1], []).append(
                    rec.get("duration_s") or 0.0
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    names = list(axes)
    t0 = time.perf_counter()
    for combo in itertools.product(*axes.values()):
        _direct(pipeline, dict(zip(names, combo)))
    naive = time.perf_counter() - t0
    n_points = int(np.prod([len(v) for v in axes.values()]))
    return {
        "points": n_points,
        "cold_s": cold,
        "warm_s": min(warm),
        "executions_cold": int(ds.attrs["misses"]),
        "stage_total_s": {k: sum(v) for k, v in per_stage.items()},
        "stage_count": {k: len(v) for k, v in per_stage.items()},
        "peer_naive_loop_s": naive,
        "ratio_cold_vs_naive": cold / naive,
        "ratio_warm_vs_naive": min(warm) / naive,
    }


def main() -> None:
    link = bench_link()
    print(
        f"optical_link.yaml  cold {link['cold_s'] * 1e3:8.1f} ms   warm "
        f"{link['warm_s'] * 1e3:7.2f} ms   direct calls {link['peer_direct_s'] * 1e3:8.1f} ms"
    )
    print(
        "  per stage (cold): "
        + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in link["stage_s"].items())
    )
    print(
        f"  ratio cold/direct {link['ratio_cold_vs_direct']:.2f}x   "
        f"warm/direct {link['ratio_warm_vs_direct']:.4f}x"
    )
    scan = bench_scan()
    print(
        f"optical_ber_scan.yaml ({scan['points']} points)  cold {scan['cold_s']:.2f} s  "
        f"warm {scan['warm_s'] * 1e3:.1f} ms   naive loop {scan['peer_naive_loop_s']:.2f} s"
    )
    print(
        "  executions (cold): "
        + ", ".join(
            f"{k} x{n} = {scan['stage_total_s'][k] * 1e3:.0f} ms"
            for k, n in scan["stage_count"].items()
        )
    )
    print(
        f"  ratio cold/naive {scan['ratio_cold_vs_naive']:.2f}x   "
        f"warm/naive {scan['ratio_warm_vs_naive']:.4f}x"
    )
    print(write_results("optical", {"link": link, "scan": scan}))


if __name__ == "__main__":
    main()
