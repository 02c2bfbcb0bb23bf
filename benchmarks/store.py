"""Store benchmark, side by side with its peers in one run.

1. write / read a 512 MiB float32 array through the store vs ``np.save`` / ``np.load``
   (uncompressed default; reads are verified against the digest);
2. ``pf.digest`` of a 256 MiB array vs raw blake3 with 2 threads;
3. a chunked stage streaming a 4 GiB array: peak RSS over the interpreter's baseline, measured in
   a subprocess (target <= 2 chunks + 200 MiB).

Timings are the best of interleaved repetitions (page cache warm; medians are in the JSON).
Results go to benchmarks/results/store.json.

    python benchmarks/store.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import blake3
import numpy as np

import physflow as pf

try:
    import benchmarks._common  # noqa: F401  (scratch directory beside the project)
except ImportError:
    import _common  # noqa: F401

MiB = 1 << 20


def _median_times(funcs: dict, reps: int, setup=None, stats: dict | None = None) -> dict:
    """Run each function ``reps`` times, interleaved; return the best time of each.

    The machine is shared, so the best of interleaved runs is the least disturbed measurement
    (as ``timeit`` does); medians go into ``stats`` when given.
    """
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(reps):
        for name, fn in funcs.items():
            if setup is not None:
                setup(name)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    if stats is not None:
        stats.update({name: statistics.median(ts) for name, ts in times.items()})
    return {name: min(ts) for name, ts in times.items()}


def bench_write_read(work: Path, mib: int, reps: int) -> dict:
    array = np.random.default_rng(0).standard_normal(mib * MiB // 4, dtype=np.float32)
    counter = iter(range(10**6))
    state: dict = {}

    def setup(name: str) -> None:
        shutil.rmtree(work / "w", ignore_errors=True)
        (work / "w").mkdir()
        state["store"] = pf.Store(work / "w" / f"store{next(counter)}")

    def store_write() -> None:
        state["entry"] = state["store"].put_value(array)

    def npy_write() -> None:
        np.save(work / "w" / "a.npy", array)

    from physflow.artifacts.arrays import write_hashed

    view = memoryview(array.view(np.uint8))

    def bare_write() -> None:  # the store's writer without hashing: what the hash adds
        write_hashed(str(work / "w" / "bare"), view, [])

    def bare_hash() -> None:
        blake3.blake3(view, max_threads=blake3.blake3.AUTO).digest()

    write_median: dict = {}
    write = _median_times(
        {
            "store": store_write,
            "np.save": npy_write,
            "write only": bare_write,
            "hash only": bare_hash,
        },
        reps,
        setup,
        write_median,
    )

    store = pf.Store(work / "read-store")
    entry = store.put_value(array)
    np.save(work / "read.npy", array)

    def store_read() -> None:
        out = store.get_value(entry)
        assert out.shape == array.shape

    def npy_read() -> None:
        out = np.load(work / "read.npy")
        assert out.shape == array.shape

    read_median: dict = {}
    read = _median_times({"store": store_read, "np.load": npy_read}, reps, None, read_median)
    gb = array.nbytes / 1e9
    return {
        "array_mib": mib,
        "write_s": write,
        "read_s": read,
        "write_s_median": write_median,
        "read_s_median": read_median,
        "write_ratio_median": write_median["np.save"] / write_median["store"],
        "read_ratio_median": read_median["np.load"] / read_median["store"],
        "write_gbps": {k: gb / v for k, v in write.items()},
        "read_gbps": {k: gb / v for k, v in read.items()},
        "write_ratio_vs_np_save": write["np.save"] / write["store"],
        # store write = write + hash; they overlap only when a core is free
        "write_overlap": (write["write only"] + write["hash only"]) / write["store"],
        "read_ratio_vs_np_load": read["np.load"] / read["store"],
    }


def bench_hash(mib: int, reps: int) -> dict:
    array = np.random.default_rng(1).standard_normal(mib * MiB // 8)
    view = memoryview(array.view(np.uint8))

    def raw() -> None:
        blake3.blake3(view, max_threads=2).digest()

    def physflow() -> None:
        pf.digest(array)

    median: dict = {}
    times = _median_times({"pf.digest": physflow, "blake3(max_threads=2)": raw}, reps, None, median)
    return {
        "array_mib": mib,
        "seconds": times,
        "gbps": {k: array.nbytes / 1e9 / v for k, v in times.items()},
        "ratio_vs_raw_blake3": times["blake3(max_threads=2)"] / times["pf.digest"],
        "seconds_median": median,
        "ratio_median": median["blake3(max_threads=2)"] / median["pf.digest"],
    }


_RSS_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import physflow as pf

    def status_kib(field):
        # /proc/self/status is per address space: unlike ru_maxrss, VmHWM is not inherited
        # from the parent across fork+exec
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    gib, chunk_mib, root = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cols = 4096
    rows = int(gib * (1 << 30)) // (4 * cols)
    chunk_rows = chunk_mib * (1 << 20) // (4 * cols)
    store = pf.Store(root)
    ctx = pf.StageContext(store)
    baseline = status_kib("VmRSS")  # the interpreter with everything imported
    t0 = time.perf_counter()
    out = ctx.output_array("x", (rows, cols), "f4", chunks=(chunk_rows, cols))
    base_row = np.arange(cols, dtype=np.float32)
    for i in range(out.grid[0]):
        region = out.region((i, 0))
        n = region[0].stop - region[0].start
        block = np.empty((n, cols), dtype=np.float32)
        block[:] = base_row
        block += np.float32(i)
        out.write_chunk((i, 0), block)
    entry = out.close()
    seconds = time.perf_counter() - t0
    peak = status_kib("VmHWM")
    print(json.dumps({"baseline": baseline, "peak": peak, "seconds": seconds,
                      "digest": entry.digest, "nbytes": entry.nbytes}))
    """
)


def bench_stream_rss(work: Path, gib: float, chunk_mib: int) -> dict:
    root = work / "stream-store"
    done = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(gib), str(chunk_mib), str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(root, ignore_errors=True)
    grown = (result["peak"] - result["baseline"]) / MiB
    budget = 2 * chunk_mib + 200
    return {
        "array_gib": gib,
        "chunk_mib": chunk_mib,
        "baseline_rss_mib": result["baseline"] / MiB,
        "peak_rss_mib": result["peak"] / MiB,
        "rss_over_baseline_mib": grown,
        "budget_mib": budget,
        "within_budget": grown <= budget,
        "write_gbps": result["nbytes"] / 1e9 / result["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "store.json"))
    args = parser.parse_args()
    rw_mib, hash_mib, stream_gib = (64, 64, 0.25) if args.quick else (512, 256, 4.0)
    with tempfile.TemporaryDirectory(prefix="physflow-bench-") as tmp:
        work = Path(tmp)
        results = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "loadavg_before": os.getloadavg(),
            },
            "write_read": bench_write_read(work, rw_mib, args.reps),
            "hash": bench_hash(hash_mib, args.reps),
            "stream_rss": bench_stream_rss(work, stream_gib, 16),
        }
    wr, h, s = results["write_read"], results["hash"], results["stream_rss"]
    print(
        f"write {rw_mib} MiB float32: store {wr['write_gbps']['store']:.2f} GB/s, "
        f"np.save {wr['write_gbps']['np.save']:.2f} GB/s -> "
        f"ratio {wr['write_ratio_vs_np_save']:.2f}x (median {wr['write_ratio_median']:.2f}x) "
        "(target >= 0.8)"
    )
    print(
        f"read  {rw_mib} MiB float32: store {wr['read_gbps']['store']:.2f} GB/s, "
        f"np.load {wr['read_gbps']['np.load']:.2f} GB/s -> "
        f"ratio {wr['read_ratio_vs_np_load']:.2f}x (median {wr['read_ratio_median']:.2f}x) "
        "(target >= 0.8; store reads are verified)"
    )
    print(
        f"hash  {hash_mib} MiB: pf.digest {h['gbps']['pf.digest']:.2f} GB/s, raw blake3 "
        f"(2 threads) {h['gbps']['blake3(max_threads=2)']:.2f} GB/s -> ratio "
        f"{h['ratio_vs_raw_blake3']:.2f}x (median {h['ratio_median']:.2f}x) (target >= 0.8)"
    )
    print(
        f"stream {stream_gib} GiB in {s['chunk_mib']} MiB chunks: peak RSS "
        f"+{s['rss_over_baseline_mib']:.0f} MiB over baseline (budget {s['budget_mib']} MiB, "
        f"{'ok' if s['within_budget'] else 'OVER'}), {s['write_gbps']:.2f} GB/s"
    )
    print(
        f"      components: write only {wr['write_s']['write only'] * 1e3:.0f} ms, hash only "
        f"{wr['write_s']['hash only'] * 1e3:.0f} ms, store {wr['write_s']['store'] * 1e3:.0f} ms "
        f"(overlap factor {wr['write_overlap']:.2f}; 1.0 = none, no free core; "
        f"load average before the run {results['machine']['loadavg_before'][0]:.1f} "
        f"on {os.cpu_count()} cores)"
    )
    results["machine"]["loadavg_after"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
