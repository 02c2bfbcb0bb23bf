"""Neuro pack: chunked HMM decoding at scale, side by side with non_local_detector and numpy.

Cases: T = 2,000,000 bins, S = 200 positions, chunks of 25,000 bins; and S = 1,000 at
T = 200,000 (chunks of 5,000). For each case and physflow configuration (numpy/float64, the
default; jax/float64; jax/float32) the whole configs/neuro_decode.yaml pipeline runs in a fresh
subprocess: wall time, per-stage time, peak RSS over the interpreter's baseline (VmHWM, like
benchmarks/store.py; budget 2 posterior chunks + 300 MiB), then a warm re-run (all hits).
Peers on the same log-likelihoods and transition matrix:

- non_local_detector 0.6.9, its own ``core.chunked_filter_smoother`` (same number of chunks),
  in a scratch venv (benchmarks/.scratch/nld) with jax 0.9.2, the last jax it runs on
  unmodified; default float32 and with jax x64. Its peak RSS is measured the same way.
- a plain numpy loop (forward then backward, whole arrays in memory): the floor.

Also: file sizes of the acausal posterior (raw T*S*itemsize vs the store's zstd chunks vs
NetCDF via ``save_dataset``, float32 and uint16). Ratios = peer time per step / physflow time per
step (> 1: physflow faster). Results: benchmarks/results/neuro.json.

    python benchmarks/neuro.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# One BLAS thread (set before numpy loads; children inherit it): a recursion makes one small
# matrix-vector product per bin, where thread hand-offs cost more than they save (measured on
# this shared 2-core machine: S=1000 numpy kernels 300 us/step with 1 thread, 720 with 2).
BLAS_THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", BLAS_THREADS)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import SCRATCH_DIR, write_results  # noqa: E402

MiB = 1 << 20
PEER_VENV = SCRATCH_DIR / "nld"
PEER_PINS = ["non-local-detector==0.6.9", "jax==0.9.2", "jaxlib==0.9.2"]
VARIANTS = {  # name -> (backend, precision)
    "numpy-f64": ("numpy", "float64"),
    "jax-f64": ("jax", "float64"),
    "jax-f32": ("jax", "float32"),
}

_RUN_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import dask.array, jax, xarray  # imported before the baseline, like any long-lived process
    import physflow as pf
    from physflow.stages.neuro import hmm_jax

    def status(field):  # per address space: VmHWM is not inherited across fork+exec
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) * 1024 for x in fh if x.startswith(field + ":"))

    store, spec, values = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    p = pf.load_spec(spec).with_values(values)
    warmup = 0.0
    if values["filter.backend"] == "jax":  # compile once, outside the timed run (like the peer)
        import numpy as np
        s, dt = values["encode.n_bins"], values["filter.precision"]
        t0 = time.perf_counter()
        A, ll = np.full((s, s), 1.0 / s), np.zeros((2, s))
        f, _, _ = hmm_jax.forward_jax(ll, A, A[0], dt, keep=True)
        hmm_jax.backward_jax(ll, A, f, None, dt)
        warmup = time.perf_counter() - t0
    base = status("VmRSS")
    t0 = time.perf_counter()
    res = p.run(store=store).raise_on_failure()
    cold = time.perf_counter() - t0
    peak = status("VmHWM")
    t0 = time.perf_counter()
    again = p.run(store=store)
    warm = time.perf_counter() - t0
    print(json.dumps({
        "baseline": base, "peak": peak, "cold_s": cold, "warm_s": warm, "jit_warmup_s": warmup,
        "misses": res.misses, "warm_misses": again.misses, "manifest": str(res.manifest_path),
        "stage_s": {r.id: r.duration_s for r in res.manifest.nodes if r.status == "miss"},
    }))
    """
)

_PEER_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import jax
    from non_local_detector import core

    def status(field):
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) * 1024 for x in fh if x.startswith(field + ":"))

    ll_path, a_path, n_chunks, x64 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    ll = np.load(ll_path, mmap_mode="r")
    A = np.load(a_path)
    s = A.shape[0]
    p0 = np.full(s, 1.0 / s)

    def decode(lik, chunks):
        return core.chunked_filter_smoother(
            time=np.arange(len(lik)), state_ind=np.zeros(s, dtype=int), initial_distribution=p0,
            transition_matrix=A, log_likelihood_func=None, log_likelihood_args=(),
            n_chunks=chunks, log_likelihoods=lik)

    with jax.enable_x64(x64):
        n = len(ll) // n_chunks
        t0 = time.perf_counter()
        decode(np.asarray(ll[: 2 * n]), 2)  # compile the chunk shape (not timed below)
        compile_s = time.perf_counter() - t0
        base = status("VmRSS")
        t0 = time.perf_counter()
        out = decode(ll, n_chunks)
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "compile_s": compile_s, "baseline": base,
                      "peak": status("VmHWM"), "log_marginal": float(out[2]),
                      "acausal_head": np.asarray(out[0][:2000], dtype=np.float64).tolist()}))
    """
)


def case_values(n_time: int, n_bins: int, chunk: int, backend: str, precision: str) -> dict:
    """configs/neuro_decode.yaml with the benchmark's sizes (``--set`` style overrides)."""
    values: dict = {
        "simulate.n_time": n_time,
        "simulate.chunk_size": chunk,
        "encode.n_bins": n_bins,
        "encode.n_train": min(n_time // 2, 100_000),
        "likelihood.chunk_size": chunk,
        "filter.chunk_size": chunk,
    }
    for node in ("filter", "smoother"):
        values[f"{node}.backend"] = backend
        values[f"{node}.precision"] = precision
    return values


def run_physflow(store: Path, values: dict) -> dict:
    spec = ROOT / "configs" / "neuro_decode.yaml"
    done = subprocess.run(
        [sys.executable, "-c", _RUN_CHILD, str(store), str(spec), json.dumps(values)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"physflow run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_peer() -> tuple[Path | None, str]:
    """The scratch venv's python with non_local_detector (made on first use), or the error."""
    python = PEER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import non_local_detector, jax; print(jax.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, "ok"
    steps = [
        ["python3.11", "-m", "venv", str(PEER_VENV)],
        [str(PEER_VENV / "bin" / "pip"), "install", "-q", *PEER_PINS],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            return None, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return python, "installed"


def export_inputs(manifest: str, work: Path) -> tuple[Path, Path]:
    """log-likelihood and transition of a run as .npy files, streamed chunk by chunk."""
    import physflow as pf

    m = pf.load_manifest(manifest)
    ll = m.open("likelihood", lazy=True)
    out = np.lib.format.open_memmap(work / "loglik.npy", mode="w+", dtype=ll.dtype, shape=ll.shape)
    step = ll.chunks[0][0]
    for a in range(0, ll.shape[0], step):
        out[a : a + step] = ll[a : a + step].compute(scheduler="synchronous")
    out.flush()
    del out
    np.save(work / "transition.npy", np.asarray(m.open("transition")))
    return work / "loglik.npy", work / "transition.npy"


def run_peer(python: Path, ll: Path, A: Path, n_chunks: int, x64: bool) -> dict:
    cmd = [str(python), "-c", _PEER_CHILD, str(ll), str(A), str(n_chunks), "1" if x64 else "0"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr[-3000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def numpy_floor(ll_path: Path, A_path: Path, n: int) -> float:
    """Seconds per bin of the textbook loop (forward, then backward), whole arrays in memory."""
    ll = np.asarray(np.load(ll_path, mmap_mode="r")[:n], dtype=np.float64)
    A = np.load(A_path)
    lik = np.exp(ll - ll.max(axis=1, keepdims=True))
    t0 = time.perf_counter()
    f = np.empty_like(lik)
    p = np.full(A.shape[0], 1.0 / A.shape[0])
    for t in range(n):
        q = p * lik[t]
        f[t] = q / q.sum()
        p = f[t] @ A
    g = np.empty_like(f)
    g[-1] = f[-1]
    for t in range(n - 2, -1, -1):
        g[t] = f[t] * (A @ (g[t + 1] / (f[t] @ A)))
        g[t] /= g[t].sum()
    return (time.perf_counter() - t0) / n


def file_sizes(manifest: str, work: Path, n_bins: int) -> dict:
    """Bytes of the stored acausal posterior: raw, the store's chunks, NetCDF (save_dataset)."""
    import physflow as pf
    from physflow.stages.neuro.dataset import open_dataset, save_dataset

    m = pf.load_manifest(manifest)
    ds = open_dataset(manifest)[["acausal_posterior"]]
    stored = m.outputs("smoother")["value"]
    obj = m.store.object_path(stored.digest)
    store_bytes = sum(f.stat().st_size for f in obj.rglob("*") if f.name != "zarr.json")
    t0 = time.perf_counter()
    nc = save_dataset(ds, work / "acausal.nc")
    write_s = time.perf_counter() - t0
    raw = int(np.prod(stored.shape)) * np.dtype(stored.dtype).itemsize
    return {
        "dtype": np.dtype(stored.dtype).name,
        "raw_bytes": raw,
        "store_zstd_bytes": store_bytes,
        "netcdf_bytes": nc.stat().st_size,
        "netcdf_saving": 1 - nc.stat().st_size / raw,
        "netcdf_write_s": write_s,
    }


def bench_variants(store: Path, sizes: tuple[int, int, int], variants: list[str]) -> dict:
    n_time, n_bins, chunk = sizes
    budget = 2 * chunk * n_bins * 4 / MiB + 300  # two float32 posterior chunks + 300 MiB
    out = {}
    for name in variants:
        r = run_physflow(store, case_values(n_time, n_bins, chunk, *VARIANTS[name]))
        decode_s = r["stage_s"]["filter"] + r["stage_s"]["smoother"]
        grown = (r["peak"] - r["baseline"]) / MiB
        out[name] = {
            "us_per_step": decode_s / n_time * 1e6,
            "filter_s": r["stage_s"]["filter"],
            "smoother_s": r["stage_s"]["smoother"],
            "stage_s": r["stage_s"],
            "cold_s": r["cold_s"],
            "warm_s": r["warm_s"],
            "warm_all_hits": r["warm_misses"] == [],
            "jit_warmup_s": r["jit_warmup_s"],
            "executed": r["misses"],
            "baseline_rss_mib": r["baseline"] / MiB,
            "rss_over_baseline_mib": grown,
            "rss_budget_mib": budget,
            "within_budget": grown <= budget,
            "manifest": r["manifest"],
        }
    return out


def bench_peers(manifest: str, work: Path, sizes: tuple[int, int, int], floor_n: int) -> dict:
    import physflow as pf

    n_time, _, chunk = sizes
    ll, A = export_inputs(manifest, work)
    python, status = ensure_peer()
    peers: dict = {"install": status}
    ours = np.asarray(pf.load_manifest(manifest).open("smoother")[:2000], dtype=np.float64)
    if python is not None:
        for x64 in (False, True):
            r = run_peer(python, ll, A, -(-n_time // chunk), x64)
            if "seconds" in r:
                r["us_per_step"] = r["seconds"] / n_time * 1e6
                r["rss_over_baseline_mib"] = (r["peak"] - r["baseline"]) / MiB
                head = np.asarray(r.pop("acausal_head"))
                r["max_abs_diff_first_2000_bins"] = float(np.abs(head - ours).max())
            peers["non_local_detector-" + ("f64" if x64 else "f32")] = r
    peers["numpy_loop"] = {"us_per_step": numpy_floor(ll, A, min(floor_n, n_time)) * 1e6}
    ll.unlink()
    return peers


def bench_case(work: Path, case: tuple[int, int, int, int], variants: list[str]) -> dict:
    n_time, n_bins, chunk, floor_n = case
    sizes = (n_time, n_bins, chunk)
    store = work / f"store-{n_time}-{n_bins}"
    result: dict = {"n_time": n_time, "n_bins": n_bins, "chunk": chunk}
    result["physflow"] = bench_variants(store, sizes, variants)
    first = result["physflow"][variants[0]]["manifest"]
    result["peers"] = bench_peers(first, work, sizes, floor_n)
    sizes_out = {"float32": file_sizes(first, work, n_bins)}
    values = case_values(n_time, n_bins, chunk, *VARIANTS[variants[0]])
    q = run_physflow(store, {**values, "smoother.posterior_dtype": "uint16"})
    sizes_out["uint16"] = file_sizes(q["manifest"], work, n_bins)
    result["file_sizes"] = sizes_out
    ratios = {}
    for peer, r in result["peers"].items():
        if "us_per_step" in r:
            for name, v in result["physflow"].items():
                ratios[f"{peer} / {name}"] = r["us_per_step"] / v["us_per_step"]
    result["ratios_peer_over_physflow"] = ratios
    shutil.rmtree(store, ignore_errors=True)
    return result


def report(case: dict) -> None:
    print(f"T={case['n_time']:,} S={case['n_bins']} chunk={case['chunk']:,}")
    print(
        f"  {'physflow':<12} {'us/step':>8} {'filter s':>9} {'smooth s':>9} {'RSS+ MiB':>9} "
        f"{'budget':>7} {'cold s':>7} {'warm s':>7}"
    )
    for name, v in case["physflow"].items():
        print(
            f"  {name:<12} {v['us_per_step']:8.2f} {v['filter_s']:9.2f} {v['smoother_s']:9.2f} "
            f"{v['rss_over_baseline_mib']:9.0f} {v['rss_budget_mib']:7.0f} {v['cold_s']:7.2f} "
            f"{v['warm_s']:7.3f}{'' if v['warm_all_hits'] else '  (warm run executed!)'}"
        )
    for name, r in case["peers"].items():
        if name == "install":
            continue
        if "us_per_step" not in r:
            print(f"  {name:<24} failed: {str(r.get('error', ''))[-300:]}")
            continue
        rss = r.get("rss_over_baseline_mib")
        print(
            f"  {name:<24} {r['us_per_step']:8.2f} us/step"
            + (f"   RSS+ {rss:.0f} MiB" if rss is not None else "")
        )
    for label, ratio in case["ratios_peer_over_physflow"].items():
        print(f"    ratio {label}: {ratio:.2f}x")
    for dtype, f in case["file_sizes"].items():
        print(
            f"  acausal {dtype}: raw {f['raw_bytes'] / MiB:.1f} MiB, store (zstd) "
            f"{f['store_zstd_bytes'] / MiB:.1f} MiB, NetCDF {f['netcdf_bytes'] / MiB:.1f} MiB "
            f"({f['netcdf_saving']:.0%} smaller)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    variants = args.variants.split(",")
    # (T, S, chunk, bins timed for the numpy-loop floor)
    if args.quick:
        cases = [(100_000, 200, 10_000, 20_000), (20_000, 1000, 2_000, 5_000)]
    else:
        cases = [(2_000_000, 200, 25_000, 100_000), (200_000, 1000, 5_000, 20_000)]
    results: dict = {"quick": args.quick, "openblas_num_threads": BLAS_THREADS, "cases": []}
    work = Path(tempfile.mkdtemp(prefix="pf-neuro-", dir=SCRATCH_DIR))
    try:
        for sizes in cases:
            case = bench_case(work, sizes, variants)
            report(case)
            results["cases"].append(case)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(write_results("neuro", results))


if __name__ == "__main__":
    main()
