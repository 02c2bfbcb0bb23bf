"""physflow.ml: loader throughput and generation overhead, side by side on the same samples.

(a) Loading one epoch of the same samples (received symbols complex128[256] + bits uint8[512]
    per sample, shuffled, batches of 64) through a torch DataLoader:
    - ``ds.torch`` (per-sample and batched), digest-verified reads of whole shards;
    - raw zarr: an IterableDataset reading the same shard arrays with ``zarr.open_array``
      (no verification), shards split across workers;              target ours >= 0.9x
    - one ``.npz`` file per sample, a map-style Dataset, shuffled;  target ours >= 2x
    - an in-memory ``TensorDataset`` (the ceiling).
(b) Generation: ``pf.ml.generate`` (serial, cold store) against a hand-written loop that calls
    the same stage functions with the same random streams and saves one ``.npy`` per output and
    sample; samples sized to ~1 ms of stage work.               target overhead <= 10%

    python benchmarks/ml_data.py            # full sizes (the lead runs this)
    python benchmarks/ml_data.py --quick    # small sizes, checks that everything works
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_results  # noqa: E402

CONFIG = ROOT / "configs" / "optical_dataset.yaml"
VARY = {"channel.ebn0_db": {"uniform": [0.0, 12.0]}}  # QPSK only: fixed-shape bits
OUTPUTS = {"x": "rx", "y": "tx.bits"}
BATCH = 64


def make_dataset(store: str, samples: int, n_symbols: int = 256) -> object:
    import physflow as pf

    return pf.ml.generate(
        CONFIG,
        samples=samples,
        vary=VARY,
        outputs=OUTPUTS,
        split={"train": 1.0},
        name=f"bench{n_symbols}",
        store=store,
        progress=False,
        overrides={"tx.n_symbols": n_symbols},
    )


# -- (a) loaders ---------------------------------------------------------------------------------


def _epoch(loader) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for batch in loader:
        n += len(batch["x"]) if isinstance(batch, dict) else len(batch[0])
    return time.perf_counter() - t0, n


def _raw_zarr_dataset(ds):
    import torch
    import zarr

    class RawZarr(torch.utils.data.IterableDataset):
        """The same shard objects read with zarr directly (no digests checked)."""

        def __init__(self, paths: list[tuple[str, str]], seed: int) -> None:
            self.paths, self.seed = paths, seed

        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            k, w = (info.num_workers, info.id) if info else (1, 0)
            rng = np.random.default_rng(self.seed)
            order = rng.permutation(len(self.paths))
            for j in order[w::k]:
                x = zarr.open_array(self.paths[j][0], mode="r")[:]
                y = zarr.open_array(self.paths[j][1], mode="r")[:]
                for i in rng.permutation(len(x)):
                    yield {"x": torch.from_numpy(x[i]), "y": torch.from_numpy(y[i])}

    paths = [
        (str(ds.store.object_path(s.arrays["x"])), str(ds.store.object_path(s.arrays["y"])))
        for s in ds.card.shards
    ]
    return RawZarr(paths, 0)


def _npz_dataset(ds, root: Path):
    import torch

    root.mkdir(parents=True, exist_ok=True)
    for i in range(len(ds)):
        sample = ds[i]
        np.savez(root / f"{i}.npz", x=sample["x"], y=sample["y"])

    class Npz(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(ds)

        def __getitem__(self, i: int):
            with np.load(root / f"{i}.npz") as f:
                return {"x": torch.from_numpy(f["x"]), "y": torch.from_numpy(f["y"])}

    return Npz()


def _loaders(ds, npz, tensors, workers: int) -> dict:
    from torch.utils.data import DataLoader

    opts = {"num_workers": workers}
    return {
        "physflow_torch": lambda: ds.torch(shuffle=True, batch_size=BATCH).loader(**opts),
        "physflow_torch_batched": lambda: DataLoader(
            ds.torch(shuffle=True, batch_size=BATCH, batched=True), batch_size=None, **opts
        ),
        "raw_zarr": lambda: DataLoader(_raw_zarr_dataset(ds), batch_size=BATCH, **opts),
        "npz_per_sample": lambda: DataLoader(npz, batch_size=BATCH, shuffle=True, **opts),
        "tensor_dataset": lambda: DataLoader(tensors, batch_size=BATCH, shuffle=True, **opts),
    }


def bench_loaders(store: str, samples: int, workers: tuple[int, ...], repeat: int) -> dict:
    import torch
    from torch.utils.data import TensorDataset

    ds = make_dataset(store, samples)
    sample_bytes = ds.card.raw_bytes / len(ds)
    scratch = Path(tempfile.mkdtemp(prefix="pf-ml-npz-"))
    try:
        npz = _npz_dataset(ds, scratch / "npz")
        everything = next(ds.iter_batches(len(ds)))
        tensors = TensorDataset(
            torch.from_numpy(everything["x"]), torch.from_numpy(everything["y"])
        )
        out: dict = {"samples": len(ds), "sample_bytes": sample_bytes, "batch_size": BATCH}
        for w in workers:
            rows: dict = {}
            for name, make in _loaders(ds, npz, tensors, w).items():
                times = []
                for _ in range(repeat):
                    seconds, n = _epoch(make())  # a fresh DataLoader: worker start-up included
                    assert n == len(ds), (name, n)
                    times.append(seconds)
                best = min(times)
                rows[name] = {
                    "seconds": best,
                    "samples_per_s": len(ds) / best,
                    "mb_per_s": len(ds) * sample_bytes / best / 1e6,
                }
            rate = {k: v["samples_per_s"] for k, v in rows.items()}
            rows["ratio_vs_raw_zarr"] = rate["physflow_torch"] / rate["raw_zarr"]
            rows["ratio_batched_vs_raw_zarr"] = rate["physflow_torch_batched"] / rate["raw_zarr"]
            rows["ratio_vs_npz"] = rate["physflow_torch"] / rate["npz_per_sample"]
            rows["ratio_vs_tensor_dataset"] = rate["physflow_torch"] / rate["tensor_dataset"]
            out[f"workers_{w}"] = rows
        out["bytes_on_disk_ratio"] = ds.card.stored_bytes / ds.card.raw_bytes
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- (b) generation overhead --------------------------------------------------------------------


def hand_loop(pipeline, samples: int, out_dir: Path | None, seed: int) -> None:
    """What a careful script does: the same stage calls and random streams, .npy per output."""
    import msgspec

    from physflow.pipeline.rng import node_generator  # the streams physflow documents

    nodes = pipeline.nodes
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(samples):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i,))))
        run_seed = int(rng.integers(0, 1 << 63))
        ebn0 = float(rng.uniform(0.0, 12.0))
        channel_cfg = msgspec.structs.replace(nodes["channel"].config, ebn0_db=ebn0)
        tx = nodes["tx"].stage.func(nodes["tx"].config, rng=node_generator(run_seed, "tx"))
        ch = nodes["channel"].stage.func(
            channel_cfg, tx["waveform"], tx["info"], rng=node_generator(run_seed, "channel")
        )
        x = nodes["rx"].stage.func(nodes["rx"].config, ch["waveform"], ch["info"], tx["symbols"])
        if out_dir is not None:  # None: the stage work alone, nothing saved
            np.save(out_dir / f"x_{i}.npy", x)
            np.save(out_dir / f"y_{i}.npy", tx["bits"])


def bench_generation(samples: int, n_symbols: int, repeat: int) -> dict:
    import physflow as pf

    pipeline = pf.load_spec(CONFIG, {"tx.n_symbols": n_symbols})
    seed = pipeline.seed
    ours, peer, compute = [], [], []
    for _ in range(repeat):
        root = Path(tempfile.mkdtemp(prefix="pf-ml-gen-"))
        try:
            t0 = time.perf_counter()
            ds = make_dataset(str(root / "store"), samples, n_symbols)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hand_loop(pipeline, samples, root / "npy", seed)
            peer.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hand_loop(pipeline, samples, None, seed)
            compute.append(time.perf_counter() - t0)
            same = all(
                np.array_equal(np.load(root / "npy" / f"x_{i}.npy"), ds[i]["x"])
                for i in range(0, samples, max(1, samples // 16))
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
    best_ours, best_peer = min(ours), min(peer)
    return {
        "samples": samples,
        "n_symbols": n_symbols,
        "ours_s": best_ours,
        "hand_loop_s": best_peer,
        "ours_ms_per_sample": best_ours / samples * 1e3,
        "hand_loop_ms_per_sample": best_peer / samples * 1e3,
        "overhead": best_ours / best_peer - 1.0,
        "compute_only_ms_per_sample": min(compute) / samples * 1e3,
        "overhead_vs_compute_only": best_ours / min(compute) - 1.0,
        "same_bits": bool(same),
    }


def _print(loaders: dict, generation: dict) -> None:
    size = loaders["sample_bytes"]
    print(f"(a) one epoch of {loaders['samples']} samples ({size:.0f} B each), batch {BATCH}")
    names = ("physflow_torch", "physflow_torch_batched", "raw_zarr", "npz_per_sample",
             "tensor_dataset")  # fmt: skip
    for key in (k for k in loaders if k.startswith("workers_")):
        rows = loaders[key]
        print(f"  DataLoader num_workers={key.split('_')[1]}")
        for name in names:
            r = rows[name]
            print(f"    {name:24s} {r['samples_per_s']:10.0f} samples/s {r['mb_per_s']:8.1f} MB/s")
        print(f"    ds.torch / raw zarr {rows['ratio_vs_raw_zarr']:.2f}x (target >= 0.9), batched "
              f"{rows['ratio_batched_vs_raw_zarr']:.2f}x; / npz {rows['ratio_vs_npz']:.2f}x "
              f"(target >= 2); / TensorDataset {rows['ratio_vs_tensor_dataset']:.2f}x")  # fmt: skip
    print(f"  bytes on disk {loaders['bytes_on_disk_ratio']:.3f}x raw")
    g = generation
    print(f"(b) generation of {g['samples']} samples ({g['hand_loop_ms_per_sample']:.2f} ms of "
          f"stage work each): pf.ml.generate {g['ours_ms_per_sample']:.3f} ms/sample, hand loop "
          f"+ .npy {g['hand_loop_ms_per_sample']:.3f} ms/sample: overhead "
          f"{g['overhead'] * 100:+.1f}% (target <= 10%), same bits: {g['same_bits']}; vs the "
          f"stage calls alone ({g['compute_only_ms_per_sample']:.3f} ms/sample, nothing saved) "
          f"{g['overhead_vs_compute_only'] * 100:+.1f}%")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = parser.parse_args(argv)
    samples = 1024 if args.quick else 16384
    gen_samples = 256 if args.quick else 4096
    repeat = 1 if args.quick else 3
    store = tempfile.mkdtemp(prefix="pf-ml-bench-")
    try:
        loaders = bench_loaders(store, samples, (0, 2), repeat)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    warm = tempfile.mkdtemp(prefix="pf-ml-warm-")
    try:  # imports and FFT plans paid before either side is timed
        make_dataset(warm, 8, 384)
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    generation = bench_generation(gen_samples, 384, repeat)
    _print(loaders, generation)
    results = {"quick": args.quick, "loaders": loaders, "generation": generation}
    print(write_results("ml_data", results))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
