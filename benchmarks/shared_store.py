"""Shared-store benchmark: an s3:// store on a real S3-API server on this machine (moto's, in its
own process) against a local store and against raw client calls, measured in one run.

1. cached hits: a warm re-run of an N-node pipeline (us/node) and single record lookups
   (``get_action`` + object check, us/lookup) on s3:// behind a local tier vs a local store;
2. a 256 MiB float64 array: ``put_value`` / ``get_value`` (verified) on s3:// (no tier) vs the
   same bytes through raw obstore ``put``/``get`` and raw s3fs ``pipe``/``cat`` (ratio raw/store,
   target >= 0.8);
3. a 100-point scan on 2 dask workers over s3:// (workers open the store by URL, each with a
   tier) vs the same scan on a local store (ratio local/s3).

moto is a Python server: its throughput, not the network, bounds the s3 numbers here; the
ratios compare physflow with raw clients against the same server.

    python benchmarks/shared_store.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # workers import this module's stages as shared_store
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE), str(ROOT), os.environ.get("PYTHONPATH")) if p
)

import physflow as pf  # noqa: E402

try:
    from benchmarks._common import best_of, write_results
except ImportError:
    from _common import best_of, write_results

MiB = 1 << 20


class Point(pf.Config):
    i: int
    n: int = 32_768


@pf.stage(version="1")
def signal(cfg: Point) -> np.ndarray:
    """A 256 KiB array per point: stored as an object (not inline)."""
    return np.sin(np.arange(cfg.n) * (1 + cfg.i) / cfg.n)


@pf.stage(version="1")
def power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x) ** 2))


@pf.stage(version="1")
def tiny(cfg: Point) -> int:
    return cfg.i


def _chain(n: int) -> pf.Pipeline:
    p = pf.Pipeline(f"hits{n}")
    for i in range(n):
        p.add(f"n{i}", tiny, Point(i=i))
    return p


class Server:
    """The S3 server, a bucket, and how to open stores and raw clients on it."""

    def __init__(self) -> None:
        import boto3

        from tests.artifacts.remote.s3_server import S3Server

        self.workdir = Path(tempfile.mkdtemp(prefix="s3-"))
        self.server = S3Server(self.workdir).start()
        self.bucket = "bench"
        self.options = {"key": "bench", "secret": "bench", "endpoint_url": self.server.endpoint}
        boto3.client(
            "s3",
            endpoint_url=self.server.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket=self.bucket)

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"

    def store(self, name: str, **kwargs) -> pf.Store:
        return pf.Store(self.url(name), storage_options=dict(self.options), **kwargs)

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def bench_hits(server: Server, n: int, reps: int) -> dict:
    """Warm re-runs (plan replay) and per-record lookups, s3:// behind a tier vs local."""
    p = _chain(n)
    local = pf.Store(Path(tempfile.mkdtemp()) / "store")
    tier = Path(tempfile.mkdtemp()) / "tier"
    name = f"hits-{uuid.uuid4().hex[:8]}"
    stores = {"local": local, "s3+tier": server.store(name, cache_dir=tier)}
    for store in stores.values():
        assert p.run(store=store).ok
    keys = local.actions.list_keys()
    out: dict = {"nodes": n}
    for label, store in stores.items():
        out[f"rerun_us_per_node_{label}"] = best_of(lambda s=store: p.run(store=s), reps) / n * 1e6
        fresh = pf.Store(local.root) if label == "local" else server.store(name, cache_dir=tier)

        def lookups(fresh=fresh) -> None:
            for key in keys:
                assert fresh.actions.lookup(key) is not None

        out[f"lookup_us_{label}"] = best_of(lookups, reps) / n * 1e6
    out["rerun_ratio"] = out["rerun_us_per_node_s3+tier"] / out["rerun_us_per_node_local"]
    out["lookup_ratio"] = out["lookup_us_s3+tier"] / out["lookup_us_local"]
    return out


def bench_big(server: Server, mib: int, reps: int) -> dict:
    """put/get of one array through the store vs raw obstore and s3fs calls of the same bytes."""
    import obstore
    import s3fs
    from obstore.store import from_url

    from physflow.artifacts.remote_client import obstore_config

    array = np.random.default_rng(0).standard_normal(mib * MiB // 8)
    data = array.tobytes()
    url = server.url(f"raw-{uuid.uuid4().hex[:8]}")
    config, client = obstore_config(url, server.options)
    raw = from_url(url, config=config, client_options=client)
    fs = s3fs.S3FileSystem(key="bench", secret="bench", endpoint_url=server.server.endpoint)
    raw_path = url[len("s3://") :] + "/s3fs-blob"
    store = server.store(f"big-{uuid.uuid4().hex[:8]}")
    entry = store.put_value(array)
    times = {
        "put_store": best_of(lambda: _fresh_put(server, array), reps),
        "put_obstore": best_of(lambda: obstore.put(raw, "blob", data), reps),
        "put_s3fs": best_of(lambda: fs.pipe_file(raw_path, data), reps),
        "get_store": best_of(lambda: store.get_value(entry), reps),
        "get_obstore": best_of(lambda: obstore.get(raw, "blob").bytes(), reps),
        "get_s3fs": best_of(lambda: fs.cat_file(raw_path), reps),
    }
    assert np.array_equal(store.get_value(entry), array)
    out = {"mib": mib, **{f"{k}_s": v for k, v in times.items()}}
    for op in ("put", "get"):
        for peer in ("obstore", "s3fs"):
            out[f"{op}_ratio_{peer}"] = times[f"{op}_{peer}"] / times[f"{op}_store"]
    out["store_put_gbps"] = mib * MiB / times["put_store"] / 1e9
    out["store_get_gbps"] = mib * MiB / times["get_store"] / 1e9
    return out


def _fresh_put(server: Server, array: np.ndarray) -> None:
    """A put into an empty store (the object is new each time, as a cold run writes it)."""
    server.store(f"big-{uuid.uuid4().hex[:8]}").put_value(array)


def bench_scan(server: Server, points: int, reps: int) -> dict:
    """A scan on 2 dask workers: s3:// (workers open it by URL, with tiers) vs a local store."""
    import shared_store as bs  # this module as workers import it

    p = pf.Pipeline("scan")
    p.add("x", bs.signal, bs.Point(i=0))
    p.add("p", bs.power, x="x")
    grid = {"x.i": list(range(points))}
    out: dict = {"points": points}
    with pf.DaskExecutor(workers=2) as executor:
        executor.connect()

        def run(store: pf.Store) -> None:
            ds = p.scan(grid, collect=["p"], store=store, executor=executor)
            assert int(ds["p"].count()) == points

        def local() -> pf.Store:
            return pf.Store(Path(tempfile.mkdtemp()) / "store")

        def s3() -> pf.Store:
            tier = Path(tempfile.mkdtemp()) / "tier"
            return server.store(f"scan-{uuid.uuid4().hex[:8]}", cache_dir=tier)

        for label, make in (("local", local), ("s3", s3)):
            out[f"cold_s_{label}"] = best_of(lambda make=make: run(make()), reps)
            warm = make()
            run(warm)
            out[f"warm_s_{label}"] = best_of(lambda warm=warm: run(warm), reps)
    out["cold_ratio_local_over_s3"] = out["cold_s_local"] / out["cold_s_s3"]
    out["warm_ratio_local_over_s3"] = out["warm_s_local"] / out["warm_s_s3"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = parser.parse_args()
    n, mib, points, reps = (200, 32, 20, 2) if args.quick else (1000, 256, 100, 3)
    server = Server()
    try:
        results = {
            "quick": args.quick,
            "hits": bench_hits(server, n, reps + 2),
            "big_array": bench_big(server, mib, reps),
            "scan": bench_scan(server, points, reps),
        }
    finally:
        server.stop()
    _print(results)
    print(f"results: {write_results('shared_store', results)}")


def _print(results: dict) -> None:
    h, b, s = results["hits"], results["big_array"], results["scan"]
    rows = [
        ("warm re-run, us/node", h["rerun_us_per_node_s3+tier"], h["rerun_us_per_node_local"]),
        ("record lookup, us", h["lookup_us_s3+tier"], h["lookup_us_local"]),
        (f"put {b['mib']} MiB, s (vs obstore)", b["put_store_s"], b["put_obstore_s"]),
        (f"put {b['mib']} MiB, s (vs s3fs)", b["put_store_s"], b["put_s3fs_s"]),
        (f"get {b['mib']} MiB, s (vs obstore)", b["get_store_s"], b["get_obstore_s"]),
        (f"get {b['mib']} MiB, s (vs s3fs)", b["get_store_s"], b["get_s3fs_s"]),
        (f"scan {s['points']} pts cold, s (vs local)", s["cold_s_s3"], s["cold_s_local"]),
        (f"scan {s['points']} pts warm, s (vs local)", s["warm_s_s3"], s["warm_s_local"]),
    ]
    print(f"{'':38} {'physflow s3':>12} {'reference':>12} {'ref/s3':>8}")
    for label, ours, ref in rows:
        print(f"{label:38} {ours:12.4g} {ref:12.4g} {ref / ours:8.2f}")


if __name__ == "__main__":
    main()
