"""AWG pack: cold compiles, a 50-point lab scan through ``Compiler.prepare_point``, parallel
cold compiles on 2 cores.

Programs: configs/awg_program.yaml (12 segments, 2 channels, 8 + 4 tones, 288 k samples) and
``examples.big_program()``: 32 segments x 2 channels x 12 tones x 262,144 samples = 8.4 M
samples per channel, the size of a real program.

Peers, measured in the same run on the same machine:
- *recompile*: what a compiler without segment caching does at every scan point -- resolve and
  synthesise every segment with the same kernels, then concatenate (no store, no framework);
- *naive*: the textbook synthesis, one ``np.cos`` per tone over all samples in float64 then
  rounding (what a hand-written script does), for the cold compile.

Ratios are physflow time / peer time (< 1 is faster). The scan changes the amplitude of the
hold ``probe`` in the middle of the program; per point we report the wall time, the changed
segment's own synthesis, and the rest (resolve, diff, memory tier, store), against the 1 ms
target for 32 segments. A second pass over the same 50 values is fully cached.

    python benchmarks/awg.py            # writes benchmarks/results/awg.json
    python benchmarks/awg.py --quick    # small sizes (checks that it works)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import best_of, write_results  # noqa: E402

SPEC = ROOT / "configs" / "awg_program.yaml"


def _tmp() -> str:
    return tempfile.mkdtemp(prefix="pf-awg-")


def recompile(prog) -> np.ndarray:
    """Peer: every segment synthesised again (same kernels), then concatenated."""
    from physflow.stages.awg import resolve, stages

    _, contents = resolve(prog.config)
    cfg = stages.SynthConfig()
    waves = [stages.synthesise_wave(c, cfg).samples for c in contents]
    return np.concatenate(waves, axis=1)


def naive(prog) -> np.ndarray:
    """Peer: one float64 np.cos per tone over each segment's samples (chirps by phase
    polynomial), rounded; crest phases and content from the same resolver."""
    from physflow.stages.awg import crest, resolve

    _, contents = resolve(prog.config)
    out = []
    for c in contents:
        n = np.arange(c.n_samples, dtype=np.float64)
        rows = []
        for ch in c.channels:
            t0 = np.asarray(ch.phase0) / 2**32
            if ch.crest is not None:
                t0 = t0 + np.asarray(crest.crest_phases(ch.crest, c.sample_rate_hz))
            x = np.zeros(c.n_samples)
            s = n / c.n_samples
            shape = s**4 * (2.5 - 3 * s + s * s) if c.kind == "move" else 0.5 * s * s
            for i in range(len(ch.f0_hz)):
                f0, f1 = ch.f0_hz[i], ch.f1_hz[i]
                a = ch.a0[i] + (ch.a1[i] - ch.a0[i]) * s
                turns = t0[i] + (f0 * n + (f1 - f0) * c.n_samples * shape) / c.sample_rate_hz
                x += a * np.cos(2 * np.pi * turns)
            rows.append(np.clip(np.rint(x), -32767, 32767).astype(np.int16))
        out.append(np.stack(rows))
    return np.concatenate(out, axis=1)


def bench_cold(prog, repeat: int) -> dict:
    """Cold compiles on empty stores: serial, threads and processes (2 workers), the Compiler,
    and both peers."""
    import physflow as pf
    from physflow.stages.awg import Compiler

    def run(executor: str) -> float:
        times = []
        for _ in range(repeat):
            root = _tmp()
            try:
                store = pf.Store(root)  # an empty store exists already; not part of compiling
                t0 = time.perf_counter()
                prog.pipeline().run(store=store, executor=executor, workers=2).raise_on_failure()
                times.append(time.perf_counter() - t0)
            finally:
                shutil.rmtree(root, ignore_errors=True)
        return min(times)

    def compiler_cold() -> float:
        root = _tmp()
        try:
            with Compiler(store=pf.Store(root), executor="threads", workers=2) as c:
                return c.prepare_point(prog).seconds
        finally:
            shutil.rmtree(root, ignore_errors=True)

    recompile(prog)  # crest optima cached in-process for every tool alike; warms kernels
    warm = _tmp()  # imports (zarr, the store) and first-call costs are paid here, untimed
    try:
        prog.pipeline().run(store=warm).raise_on_failure()
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    serial, threads, procs = run("serial"), run("threads"), run("processes")
    comp = min(compiler_cold() for _ in range(repeat))
    peer = best_of(lambda: recompile(prog), repeat)
    slow = best_of(lambda: naive(prog), 1)
    total = sum(c.n_samples for c in prog.resolve().contents)
    return {
        "segments": len(prog.config.segments),
        "samples_per_channel": total,
        "pipeline_serial_s": serial,
        "pipeline_threads2_s": threads,
        "pipeline_processes2_s": procs,
        "compiler_threads2_s": comp,
        "peer_recompile_s": peer,
        "peer_naive_s": slow,
        "parallel_speedup_threads": serial / threads,
        "parallel_speedup_processes": serial / procs,
        "ratio_serial_vs_recompile": serial / peer,
        "ratio_threads_vs_naive": threads / slow,
    }


def _scan_pass(compiler, prog, values) -> list[dict]:
    rows = []
    for a in values:
        rep = compiler.prepare_point(prog.replace("probe", amps=float(a)))
        rows.append(
            {
                "s": rep.seconds,
                "synth_s": rep.synth_seconds,
                "synthesised": list(rep.synthesised),
                "changed": list(rep.changed_segments),
            }
        )
    return rows


def bench_scan(prog, points: int, persist: str) -> dict:
    """50 points changing the probe's amplitude, then the same 50 again (all cached)."""
    from physflow.stages.awg import Compiler

    values = np.linspace(0.02, 0.049, points)
    root = _tmp()
    try:
        with Compiler(store=root, persist=persist, executor="threads", workers=2) as c:
            cold = c.prepare_point(prog).seconds
            first = _scan_pass(c, prog, values)
            c.flush()
            cached = _scan_pass(c, prog, values)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert all(r["synthesised"] == ["probe"] for r in first), first[:2]
    assert all(r["synthesised"] == [] for r in cached)
    point = np.array([r["s"] for r in first])
    synth = np.array([r["synth_s"] for r in first])
    rest = np.maximum(point - synth, 0.0)
    hit = np.array([r["s"] for r in cached])
    return {
        "persist": persist,
        "points": points,
        "cold_first_point_s": cold,
        "point_median_s": float(np.median(point)),
        "changed_segment_synth_median_s": float(np.median(synth)),
        "rest_median_s": float(np.median(rest)),
        "rest_p90_s": float(np.percentile(rest, 90)),
        "cached_point_median_s": float(np.median(hit)),
        "cached_point_max_s": float(hit.max()),
        "target_s": 1e-3,
        "changed_segments_per_point": sorted({tuple(r["changed"]) for r in first}),
    }


def bench_recompile_scan(prog, points: int) -> dict:
    values = np.linspace(0.02, 0.049, points)
    t0 = time.perf_counter()
    for a in values:
        recompile(prog.replace("probe", amps=float(a)))
    per = (time.perf_counter() - t0) / points
    return {"points": points, "per_point_s": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, to check it works")
    args = ap.parse_args()
    import physflow as pf
    from physflow.stages.awg import Program
    from physflow.stages.awg.examples import big_program

    if args.quick:
        big, points, peer_points, repeat = big_program(32, 4, 16_384), 10, 3, 2
    else:
        big, points, peer_points, repeat = big_program(), 50, 10, 3
    default = Program.from_config(pf.load_spec(SPEC).nodes["program"].config)
    results: dict = {"quick": args.quick}
    results["cold_default"] = bench_cold(default, repeat)
    results["cold_big"] = bench_cold(big, repeat)
    results["scan_sync"] = bench_scan(big, points, "sync")
    results["scan_background"] = bench_scan(big, points, "background")
    results["peer_recompile_scan"] = bench_recompile_scan(big, peer_points)
    peer = results["peer_recompile_scan"]["per_point_s"]
    for key in ("scan_sync", "scan_background"):
        r = results[key]
        r["ratio_point_vs_recompile"] = r["point_median_s"] / peer
        r["ratio_cached_point_vs_recompile"] = r["cached_point_median_s"] / peer
    _print(results)
    print(write_results("awg", results))


def _print(r: dict) -> None:
    for key in ("cold_default", "cold_big"):
        c = r[key]
        print(
            f"{key}: {c['segments']} segments, {c['samples_per_channel']:,} samples/channel  "
            f"serial {c['pipeline_serial_s']:.3f} s  threads(2) {c['pipeline_threads2_s']:.3f} s"
            f"  processes(2) {c['pipeline_processes2_s']:.3f} s  Compiler "
            f"{c['compiler_threads2_s']:.3f} s"
        )
        print(
            f"  peers: recompile {c['peer_recompile_s']:.3f} s, naive {c['peer_naive_s']:.3f} s"
            f"   speedup on 2 cores: threads {c['parallel_speedup_threads']:.2f}x, processes "
            f"{c['parallel_speedup_processes']:.2f}x   serial/recompile "
            f"{c['ratio_serial_vs_recompile']:.2f}x  threads/naive "
            f"{c['ratio_threads_vs_naive']:.3f}x"
        )
    peer = r["peer_recompile_scan"]["per_point_s"]
    for key in ("scan_sync", "scan_background"):
        s = r[key]
        print(
            f"{key}: {s['points']} points  per point {s['point_median_s'] * 1e3:.2f} ms (changed "
            f"segment synthesis {s['changed_segment_synth_median_s'] * 1e3:.2f} ms, rest "
            f"{s['rest_median_s'] * 1e3:.3f} ms, p90 {s['rest_p90_s'] * 1e3:.3f} ms)  cached "
            f"point {s['cached_point_median_s'] * 1e3:.3f} ms (max "
            f"{s['cached_point_max_s'] * 1e3:.3f}; target 1 ms)"
        )
        print(
            f"  vs recompiling every segment ({peer * 1e3:.1f} ms/point): "
            f"{s['ratio_point_vs_recompile']:.4f}x per point, "
            f"{s['ratio_cached_point_vs_recompile']:.5f}x cached"
        )


if __name__ == "__main__":
    main()
