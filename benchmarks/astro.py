"""Astro pack: loading cutouts, physflow warm vs astropy direct reads vs torchfits.

(a) cutouts: 50 stamps of 100x100 from a 4096x4096 int16 FITS image (BZERO 32768): physflow's
    ``read_fits -> cutouts`` pipeline re-run warm (everything a hit, the stamps loaded verified
    from the store) against astropy reading the same stamps from the file (``section``, and
    ``data``, which scales the whole image; the faster counts) and torchfits' ``read_subset``
    (per call, or one reusable subset reader; the faster counts).
(b) loader: one DataLoader epoch over a cutout set (32x32 stamps of stars from 16 survey images,
    configs/astro_cutouts_dataset.yaml): physflow's ``prepare_cutouts`` + ``ds.torch()`` warm
    (shards in the store) against map-style datasets that cut each sample from the FITS files
    with astropy or torchfits (files opened per sample, or kept open; the faster counts).

torchfits 1.3.1 needs torch 2.14 (the project pins 2.13): it runs in a virtualenv made here under
benchmarks/.scratch/ (else the installer's error is recorded). Every tool's stamps are checked
equal to physflow's. Ratios are peer time / physflow time (> 1: physflow is faster).

    python benchmarks/astro.py           # full sizes, writes benchmarks/results/astro.json
    python benchmarks/astro.py --quick   # small sizes, to check that it works
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import SCRATCH_DIR, best_of, write_results  # noqa: E402

SPEC = ROOT / "configs" / "astro_cutouts_dataset.yaml"
VENV = SCRATCH_DIR / "astro-torchfits-venv"
TORCHFITS = "torchfits==1.3.1"
FULL = {"image": 4096, "cutouts": 50, "size": 100, "images": 16, "field": 1024, "samples": 4096}
QUICK = {"image": 1024, "cutouts": 20, "size": 100, "images": 4, "field": 256, "samples": 256}
PEER_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch, torchfits

job = json.load(open(sys.argv[1]))
out = {"version": torchfits.__version__, "torch": torch.__version__}

def best(fn, repeat):
    times = [(time.perf_counter(), fn(), time.perf_counter()) for _ in range(repeat)]
    return min(b - a for a, _, b in times), times[-1][1]

def cutouts():
    s = job["size"]
    return np.stack([torchfits.read_subset(job["path"], 0, x, y, x + s, y + s).numpy()
                     for x, y in job["corners"]]).astype(np.float64)

def cutouts_reader():
    s = job["size"]
    r = torchfits.open_subset_reader(job["path"], 0)
    try:
        return np.stack([r.read_subset(x, y, x + s, y + s).numpy()
                         for x, y in job["corners"]]).astype(np.float64)
    finally:
        r.close()

for name, fn in (("read_subset", cutouts), ("subset_reader", cutouts_reader)):
    t, value = best(fn, job["repeat"])
    out["cutouts_" + name + "_s"], out["cutouts_" + name + "_sum"] = t, float(value.sum())

class Stamps(torch.utils.data.Dataset):
    def __init__(self, keep_open):
        self.items, self.keep_open, self.readers = job["samples"], keep_open, {}
    def __len__(self):
        return len(self.items)
    def __getitem__(self, i):
        path, x, y, flux = self.items[i]
        s = job["stamp"]
        if self.keep_open:
            r = self.readers.get(path) or self.readers.setdefault(
                path, torchfits.open_subset_reader(path, 0))
            t = r.read_subset(x, y, x + s, y + s)
        else:
            t = torchfits.read_subset(path, 0, x, y, x + s, y + s)
        return {"x": t.to(torch.float32), "flux": torch.tensor(flux, dtype=torch.float32)}

for name, keep in (("per_sample", False), ("kept_open", True)):
    def epoch(check=False):
        g = torch.Generator().manual_seed(0)
        loader = torch.utils.data.DataLoader(Stamps(keep), batch_size=64, shuffle=True,
                                             generator=g)
        total = 0.0
        for b in loader:
            total += float(b["x"].double().sum()) if check else len(b["x"])
        return total
    out["loader_" + name + "_sum"] = epoch(check=True)
    t, _ = best(epoch, job["repeat"])
    out["loader_" + name + "_s"] = t
print(json.dumps(out))
"""


# -- (a) cutouts from one big image ---------------------------------------------------------------


def make_image(work: Path, n: int, count: int, size: int) -> tuple[Path, list[list[float]]]:
    """A simulated n x n star field written as int16 FITS; ``count`` random cutout centres."""
    from physflow.stages.astro import SimulateConfig, WriteFitsConfig, simulate, write_fits

    cfg = SimulateConfig(nx=n, ny=n, n_stars=50, min_separation=0.0, sky=200.0)
    out = simulate.func(cfg, rng=np.random.default_rng(1))
    blob = write_fits.func(WriteFitsConfig(), out["image"], out["wcs"])["fits"]
    path = work / "field.fits"
    path.write_bytes(blob)
    rng = np.random.default_rng(2)
    half = size // 2
    centres = rng.uniform(half, n - half - 1, size=(count, 2)).round().tolist()
    return path, centres


def bench_cutouts(work: Path, sizes: dict, repeat: int) -> dict:
    from astropy.io import fits

    import physflow as pf
    from physflow.stages.astro import CutoutsConfig, ReadFitsConfig, cutouts, read_fits

    path, centres = make_image(work, sizes["image"], sizes["cutouts"], sizes["size"])
    size = sizes["size"]
    digest = pf.digest(path.read_bytes())
    store = pf.Store(work / "store-cutouts")

    def pipeline(pinned: bool = True):
        p = pf.Pipeline("astro_cutout_bench", seed=0)
        p.add("image", read_fits, ReadFitsConfig(url=str(path), digest=digest if pinned else ""))
        p.add("cut", cutouts, CutoutsConfig(size=size, frame="pixel", positions=centres),
              image="image")  # fmt: skip
        return p

    def physflow_stamps(pinned: bool = True) -> np.ndarray:
        res = pipeline(pinned).run(store=store)
        return res["cut"].data

    t0 = time.perf_counter()
    ours = physflow_stamps()
    cold = time.perf_counter() - t0
    corners = [(int(x) - size // 2, int(y) - size // 2) for x, y in centres]

    def astropy_section() -> np.ndarray:
        with fits.open(path) as hdul:
            sec = hdul[0].section
            return np.stack([sec[y : y + size, x : x + size] for x, y in corners]).astype(
                np.float64
            )

    def astropy_data() -> np.ndarray:
        with fits.open(path) as hdul:
            data = hdul[0].data
            return np.stack([data[y : y + size, x : x + size] for x, y in corners]).astype(
                np.float64
            )

    for fn in (astropy_section, astropy_data):
        assert np.array_equal(fn(), ours), f"{fn.__name__} differs from physflow's stamps"
    out = {
        "image": sizes["image"],
        "cutouts": len(corners),
        "size": size,
        "file_bytes": path.stat().st_size,
        "physflow_cold_s": cold,
        "physflow_warm_s": best_of(physflow_stamps, repeat),
        "physflow_warm_autopin_s": best_of(lambda: physflow_stamps(False), repeat),
        "astropy_section_s": best_of(astropy_section, repeat),
        "astropy_data_s": best_of(astropy_data, repeat),
    }
    out["astropy_s"] = min(out["astropy_section_s"], out["astropy_data_s"])
    out["ratio_astropy_vs_physflow_warm"] = out["astropy_s"] / out["physflow_warm_s"]
    out["_job"] = {"path": str(path), "corners": corners, "size": size, "sum": float(ours.sum())}
    return out


# -- (b) a DataLoader epoch over a cutout set ---------------------------------------------------


def consume(loader: object, check: bool) -> float:
    """Iterate an epoch: count samples (timed runs), or sum every value (the check that all
    tools served the same stamps; exact, the values are integer counts)."""
    total = 0.0
    for batch in loader:
        total += float(batch["x"].double().sum()) if check else len(batch["x"])
    return total


STAMP = 32


def astropy_stamps(samples: list) -> object:
    """What a user writes without physflow: a map-style dataset cutting each sample from the
    files with astropy (opened per sample, or kept open)."""
    import torch
    from astropy.io import fits

    class Stamps(torch.utils.data.Dataset):
        def __init__(self, keep_open: bool) -> None:
            self.keep_open, self.open = keep_open, {}

        def __len__(self) -> int:
            return len(samples)

        def __getitem__(self, i: int) -> dict:
            path, x, y, flux = samples[i]
            if self.keep_open:
                if path not in self.open:
                    self.open[path] = fits.open(path)
                cut = self.open[path][0].section[y : y + STAMP, x : x + STAMP]
            else:
                with fits.open(path) as hdul:
                    cut = hdul[0].section[y : y + STAMP, x : x + STAMP]
            return {"x": torch.from_numpy(cut.astype(np.float32)), "flux": torch.tensor(flux)}

    return Stamps


def sample_list(ds: object, index: Path) -> list:
    """(file, stamp corner x, y, flux) of every sample of the dataset, from the survey index."""
    entries = json.loads(index.read_bytes())["images"]
    samples = []
    for i in range(len(ds)):
        p = ds.params(i)
        entry, k = entries[p["sample.image"]], p["sample.star"]
        x, y = entry["stars"]["x"][k], entry["stars"]["y"][k]
        corner = (int(np.floor(x + 0.5)) - STAMP // 2, int(np.floor(y + 0.5)) - STAMP // 2)
        samples.append([str(index.parent / entry["name"]), *corner, entry["stars"]["flux"][k]])
    return samples


def bench_loader(work: Path, sizes: dict, repeat: int) -> dict:
    import torch

    import physflow as pf
    from physflow.stages.astro import SimulateConfig, prepare_cutouts, publish_survey

    n = sizes["field"]
    sim = SimulateConfig(nx=n, ny=n, n_stars=8, min_separation=40.0)
    index = Path(publish_survey(str(work / "survey"), sizes["images"], sim=sim))
    overrides = {"survey.index": str(index), "survey.digest": pf.digest(index.read_bytes())}
    vary = {"sample.image": {"randint": [0, sizes["images"]]}, "sample.star": {"randint": [0, 8]}}
    args = {"store": pf.Store(work / "store-loader"), "overrides": overrides, "vary": vary,
            "samples": sizes["samples"], "shard_size": 256}  # fmt: skip
    t0 = time.perf_counter()
    _, first = prepare_cutouts(SPEC, **args)
    cold = time.perf_counter() - t0

    def physflow_prepare() -> object:
        ds, stats = prepare_cutouts(SPEC, repair=False, **args)
        assert stats.store_hits == len(ds)
        return ds

    def physflow_epoch(ds: object, check: bool = False) -> float:
        tds = ds.torch(shuffle=True, seed=0, batch_size=64)
        return consume(torch.utils.data.DataLoader(tds, batch_size=64), check)

    ds = physflow_prepare()
    samples = sample_list(ds, index)
    stamps = astropy_stamps(samples)

    def astropy_epoch(keep_open: bool, check: bool = False) -> float:
        g = torch.Generator().manual_seed(0)
        loader = torch.utils.data.DataLoader(
            stamps(keep_open), batch_size=64, shuffle=True, generator=g
        )
        return consume(loader, check)

    ours = physflow_epoch(ds, check=True)
    for keep in (False, True):  # the same stamps (interior stars: no padding differences)
        assert astropy_epoch(keep, check=True) == ours, "astropy stamps differ from physflow's"
    out = {
        "images": sizes["images"],
        "field": n,
        "samples": len(ds),
        "stamp": STAMP,
        "physflow_cold_s": cold,
        "cold_remote_reads": first.remote_reads,
        "physflow_warm_prepare_s": best_of(physflow_prepare, repeat),
        "physflow_warm_epoch_s": best_of(lambda: physflow_epoch(ds), repeat),
        "astropy_per_sample_s": best_of(lambda: astropy_epoch(False), repeat),
        "astropy_kept_open_s": best_of(lambda: astropy_epoch(True), repeat),
    }
    out["astropy_s"] = min(out["astropy_per_sample_s"], out["astropy_kept_open_s"])
    warm = out["physflow_warm_epoch_s"]
    out["ratio_astropy_vs_physflow_warm"] = out["astropy_s"] / warm
    out["ratio_astropy_vs_physflow_warm_with_prepare"] = out["astropy_s"] / (
        warm + out["physflow_warm_prepare_s"]
    )
    out["_job"] = {"samples": samples, "stamp": STAMP, "sum": ours}
    return out


def torchfits_python() -> tuple[Path | None, str]:
    """The venv's python with torchfits importable, creating the venv if needed; else the
    installer's error (verbatim, last lines)."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import torchfits, torch; print(torchfits.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", TORCHFITS, "astropy>=6", "numpy"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return None, (done.stderr or done.stdout).strip()[-4000:]
    if subprocess.run(check, capture_output=True).returncode != 0:
        return None, subprocess.run(check, capture_output=True, text=True).stderr[-4000:]
    return python, ""


def bench_torchfits(work: Path, cut: dict, load: dict, repeat: int) -> dict:
    python, error = torchfits_python()
    if python is None:
        return {"installed": False, "error": error}
    job = {k: cut["_job"][k] for k in ("path", "corners", "size")}
    job.update(samples=load["_job"]["samples"], stamp=STAMP, repeat=repeat)
    (work / "torchfits-job.json").write_text(json.dumps(job))
    (work / "torchfits_peer.py").write_text(PEER_SCRIPT)
    command = [str(python), str(work / "torchfits_peer.py"), str(work / "torchfits-job.json")]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"installed": True, "error": done.stderr.strip()[-4000:]}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for key, ref in (("cutouts_read_subset", cut), ("cutouts_subset_reader", cut),
                     ("loader_per_sample", load), ("loader_kept_open", load)):  # fmt: skip
        assert out.pop(key + "_sum") == ref["_job"]["sum"], f"torchfits {key} stamps differ"
    out["installed"] = True
    out["cutouts_s"] = min(out["cutouts_read_subset_s"], out["cutouts_subset_reader_s"])
    out["loader_s"] = min(out["loader_per_sample_s"], out["loader_kept_open_s"])
    out["ratio_cutouts_vs_physflow_warm"] = out["cutouts_s"] / cut["physflow_warm_s"]
    out["ratio_loader_vs_physflow_warm"] = out["loader_s"] / load["physflow_warm_epoch_s"]
    out["ratio_cutouts_vs_astropy"] = cut["astropy_s"] / out["cutouts_s"]
    return out


def report(cut: dict, load: dict, tf: dict) -> None:
    ms = 1e3
    print(
        f"(a) {cut['cutouts']} cutouts {cut['size']}x{cut['size']} of a {cut['image']}^2 int16 "
        f"image ({cut['file_bytes'] / 2**20:.0f} MiB)"
    )
    print(f"  physflow cold {cut['physflow_cold_s'] * ms:8.1f} ms   warm "
          f"{cut['physflow_warm_s'] * ms:7.2f} ms (digest pinned), "
          f"{cut['physflow_warm_autopin_s'] * ms:7.2f} ms (file hashed at build)")  # fmt: skip
    print(f"  astropy section {cut['astropy_section_s'] * ms:7.2f} ms   data (whole image) "
          f"{cut['astropy_data_s'] * ms:7.2f} ms   -> astropy / physflow warm "
          f"{cut['ratio_astropy_vs_physflow_warm']:.2f}x")  # fmt: skip
    print(f"(b) epoch of {load['samples']} stamps {load['stamp']}^2 from {load['images']} images")
    print(f"  physflow cold (generate) {load['physflow_cold_s']:.2f} s   warm epoch "
          f"{load['physflow_warm_epoch_s'] * ms:7.1f} ms (+ prepare, all hits: "
          f"{load['physflow_warm_prepare_s'] * ms:.1f} ms)")  # fmt: skip
    print(f"  astropy per sample {load['astropy_per_sample_s'] * ms:7.1f} ms   kept open "
          f"{load['astropy_kept_open_s'] * ms:7.1f} ms   -> astropy / physflow warm "
          f"{load['ratio_astropy_vs_physflow_warm']:.2f}x (with prepare "
          f"{load['ratio_astropy_vs_physflow_warm_with_prepare']:.2f}x)")  # fmt: skip
    if tf.get("installed") and "error" not in tf:
        print(f"  torchfits {tf['version']} (torch {tf['torch']}, own venv): cutouts "
              f"{tf['cutouts_s'] * ms:.2f} ms -> {tf['ratio_cutouts_vs_physflow_warm']:.2f}x; "
              f"epoch {tf['loader_s'] * ms:.1f} ms -> {tf['ratio_loader_vs_physflow_warm']:.2f}x "
              "(torchfits / physflow warm)")  # fmt: skip
    else:
        print(f"  torchfits: not measured: {tf.get('error')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (3 if args.quick else 7)
    work = Path(tempfile.mkdtemp(prefix="pf-astro-"))
    try:
        cut = bench_cutouts(work, sizes, repeat)
        load = bench_loader(work, sizes, repeat)
        tf = bench_torchfits(work, cut, load, repeat)
        report(cut, load, tf)
        cut.pop("_job")
        load.pop("_job")
        results = {"quick": args.quick, "repeat": repeat, "cutouts": cut, "loader": load,
                   "torchfits": tf}  # fmt: skip
        print(write_results("astro", results))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
