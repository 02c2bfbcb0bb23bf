"""RF pack: configs/rf_detect.yaml frames/s cold and warm, and the streamed STFT's peak memory.

1. Detect chain (synth -> stft -> normalize -> cfar -> score, 33 ms frames at 20 MS/s): the
   pipeline cold (fresh store) and warm (everything cached), against a plain script that calls
   the same numpy/scipy kernels in a loop (no cache, no store). Ratio cold / script is the
   framework's overhead (target <= 1.10); the two are timed alternately, so a burst of machine
   noise falls on both.
2. Streamed STFT of a recording much larger than its chunks (2 GiB; --quick: 128 MiB): a SigMF
   file is read into the store (rf.read_sigmf) and transformed (rf.stft) in a subprocess whose
   peak RSS is measured; target: growth <= 2 chunks + 200 MiB. Peer: a numpy loop that reads
   the file chunk by chunk and writes the spectrogram to a raw file.

    python benchmarks/rf.py           # writes benchmarks/results/rf.json
    python benchmarks/rf.py --quick   # small sizes, to check that it runs
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
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_results  # noqa: E402

DETECT = ROOT / "configs" / "rf_detect.yaml"
CHUNK_MIB = 16


def _script(pipeline) -> dict:
    """The detect chain as a plain script: the same kernels, called in a loop per frame."""
    from physflow.stages.rf import cfar_core, dsp
    from physflow.stages.rf.boxes import make_boxes, match, nms
    from physflow.stages.rf.xp import get_backend

    n = pipeline.nodes
    s, c = n["stft"].config, n["cfar"].config
    out = n["synth"].stage.func(n["synth"].config, rng=np.random.default_rng(pipeline.seed))
    iq, truth = out["iq"], out["truth"]
    be = get_backend("numpy")
    fs, frame = iq.sample_rate_hz, s.frame_samples
    frames = iq.samples[: (iq.samples.size // frame) * frame].reshape(-1, frame)
    rows, half_t, half_f = [], s.hop / (2 * fs), fs / (2 * s.n_fft)
    for f, x in enumerate(frames):
        power = dsp.stft_power(be, x[None], s.n_fft, s.hop)[0]
        db, _ = dsp.to_db_window(be, power, n["normalize"].config.range_db, None)
        hits = cfar_core.ca_cfar(
            be,
            be.power10(db / 10.0),
            mode=c.mode,
            pfa=c.pfa,
            time=(c.guard_time, c.train_time, c.stride_time),
            freq=(c.guard_freq, c.train_freq, c.stride_freq),
            min_train=c.min_train,
        )
        groups = cfar_core.components(hits, db, (c.merge_time, c.merge_freq), c.min_cells)
        t0 = (f * frame + s.n_fft / 2) / fs  # centre of the frame's first column
        boxes = [
            (
                t0 + c0 * s.hop / fs - half_t,
                t0 + c1 * s.hop / fs + half_t,
                (b0 - s.n_fft // 2) * fs / s.n_fft - half_f,
                (b1 - s.n_fft // 2) * fs / s.n_fft + half_f,
            )
            for c0, c1, b0, b1, _ in groups
        ]
        keep = nms(np.asarray(boxes).reshape(-1, 4), np.asarray([g[4] for g in groups]), c.nms_iou)
        rows += [boxes[i] for i in keep]
    found = make_boxes(rows, [0] * len(rows), ["signal"] * len(rows), [0.0] * len(rows))
    pairs = match(truth.box, found.box, n["score"].config.iou_threshold)
    return {"recall": len(pairs) / len(truth), "frames": len(frames)}


def bench_detect(n_frames: int, repeat: int) -> dict:
    import physflow as pf

    pipeline = pf.load_spec(DETECT, overrides={"synth.n_frames": n_frames})
    warm_root = tempfile.mkdtemp(prefix="pf-rf-warmup-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # latency budgets: reported, not the benchmark's concern
        try:  # imports (dask, scipy.ndimage) and FFT plans are paid here, by neither side below
            pf.load_spec(DETECT, overrides={"synth.n_frames": 1}).run(store=warm_root)
            _script(pf.load_spec(DETECT, overrides={"synth.n_frames": 1}))
        finally:
            shutil.rmtree(warm_root, ignore_errors=True)
        cold, warm, stages, recall, script = [], [], {}, None, []
        for _ in range(repeat):  # pipeline and script alternate: noise falls on both alike
            t0 = time.perf_counter()
            peer = _script(pipeline)
            script.append(time.perf_counter() - t0)
            root = tempfile.mkdtemp(prefix="pf-rf-")
            try:
                t0 = time.perf_counter()
                res = pipeline.run(store=root).raise_on_failure()
                cold.append(time.perf_counter() - t0)
                if cold[-1] == min(cold):
                    stages = {r.id: r.duration_s for r in res.manifest.nodes}
                    recall = res["score.recall"]
                for _ in range(5):
                    t0 = time.perf_counter()
                    again = pipeline.run(store=root)
                    warm.append(time.perf_counter() - t0)
                    assert again.misses == []
            finally:
                shutil.rmtree(root, ignore_errors=True)
    return {
        "frames": n_frames,
        "cold_s": min(cold),
        "warm_s": min(warm),
        "cold_frames_per_s": n_frames / min(cold),
        "warm_frames_per_s": n_frames / min(warm),
        "stage_s": stages,
        "recall": recall,
        "peer_script_s": min(script),
        "peer_frames_per_s": n_frames / min(script),
        "peer_recall": peer["recall"],
        "ratio_cold_vs_script": min(cold) / min(script),
        "ratio_cold_vs_script_median_pair": float(
            np.median([c / s for c, s in zip(cold, script, strict=True)])
        ),
        "ratio_warm_vs_script": min(warm) / min(script),
    }


STREAM = """
import json, time
import numpy as np
import physflow as pf
from physflow.stages.rf import IQMeta, ReadSigmfConfig, StftConfig, read_sigmf, stft
import dask.array, scipy.ndimage  # imports are not the stages' memory

def status(field):  # this process only
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith(field + ":"))

def pipeline(meta, digest, chunk_samples):
    p = pf.Pipeline("stream")
    p.add("read", read_sigmf, ReadSigmfConfig(path=meta, blake3=digest,
                                              chunk_samples=chunk_samples))
    p.add("stft", stft, StftConfig(frame_samples={frame}), iq="read.samples", meta="read.meta")
    return p

# a one-frame warm-up run loads every module the run uses (zarr, dask's array machinery, the
# store's codecs): imported code is not the streamed data's memory
pipeline({warm_meta!r}, {warm_digest!r}, 2**16).run(store=pf.Store({warm_store!r}))
p = pipeline({meta!r}, {digest!r}, {chunk_samples})
base = status("VmRSS")
t0 = time.perf_counter()
res = p.run(store=pf.Store({store!r})).raise_on_failure()
total = time.perf_counter() - t0
nodes = {{r.id: r.duration_s for r in res.manifest.nodes}}
out = {{"grown_mib": (status("VmHWM") - base) / 1024, "total_s": total, "stage_s": nodes,
        "spectrogram_bytes": res.manifest.nodes[1].outputs["power"].nbytes}}
print(json.dumps(out))
"""

PEER = """
import json, time
import numpy as np
from physflow.stages.rf import dsp
from physflow.stages.rf.xp import get_backend
be = get_backend("numpy")
frame, per = {frame}, {frames_per_chunk}
t0 = time.perf_counter()
with open({data!r}, "rb") as src, open({out!r}, "wb") as dst:
    while True:
        x = np.fromfile(src, dtype=np.complex64, count=frame * per)
        m = x.size // frame
        if m == 0:
            break
        dsp.stft_power(be, x[: m * frame].reshape(m, frame), 4096, 2048).astype(
            np.float32).tofile(dst)
print(json.dumps({{"peer_s": time.perf_counter() - t0}}))
"""


def _write_recording(base: Path, n_samples: int) -> tuple[str, str]:
    """A SigMF noise recording written chunk by chunk (never whole in memory)."""
    from physflow.stages.rf import IQMeta, recording_digest, sigmf

    meta, data = sigmf.paths(base)
    rng = np.random.default_rng(0)
    step = 2**21
    with open(data, "wb") as fh:
        for lo in range(0, n_samples, step):
            count = min(step, n_samples - lo)
            rng.standard_normal(2 * count, dtype=np.float32).tofile(fh)
    meta.write_text(json.dumps(sigmf.build_meta(IQMeta(sample_rate_hz=20e6))))
    return str(meta), recording_digest(meta)


def bench_stream(mib: int) -> dict:
    frame = 660_000
    n_samples = (mib * 2**20 // 8) // frame * frame
    root = Path(tempfile.mkdtemp(prefix="pf-rf-stream-"))
    try:
        meta, digest = _write_recording(root / "rec", n_samples)
        warm_meta, warm_digest = _write_recording(root / "warm", frame)
        code = STREAM.format(
            meta=meta,
            digest=digest,
            chunk_samples=CHUNK_MIB * 2**20 // 8,
            frame=frame,
            store=str(root / "store"),
            warm_meta=warm_meta,
            warm_digest=warm_digest,
            warm_store=str(root / "warm-store"),
        )
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        ours = json.loads(done.stdout.strip().splitlines()[-1])
        peer_code = PEER.format(
            frame=frame,
            frames_per_chunk=3,
            data=str(root / "rec.sigmf-data"),
            out=str(root / "peer.f32"),
        )
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(peer_code)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        peer = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    budget = 2 * CHUNK_MIB + 200
    return {
        "recording_mib": n_samples * 8 / 2**20,
        "spectrogram_mib": ours["spectrogram_bytes"] / 2**20,
        "chunk_mib": CHUNK_MIB,
        "peak_rss_growth_mib": ours["grown_mib"],
        "budget_mib": budget,
        "within_budget": ours["grown_mib"] <= budget,
        "total_s": ours["total_s"],
        "stage_s": ours["stage_s"],
        "peer_numpy_loop_stft_s": peer["peer_s"],
        "ratio_stft_vs_peer": ours["stage_s"]["stft"] / peer["peer_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = parser.parse_args()
    frames, repeat, mib = (4, 2, 128) if args.quick else (32, 5, 2048)
    d = bench_detect(frames, repeat)
    print(f"rf_detect.yaml, {frames} frames of 33 ms (20 MS/s, 4096/2048 STFT)")
    print(
        f"  cold  {d['cold_s']:7.2f} s  {d['cold_frames_per_s']:6.1f} frames/s   "
        f"ratio vs script {d['ratio_cold_vs_script']:.3f}x best vs best, "
        f"{d['ratio_cold_vs_script_median_pair']:.3f}x median pair (target <= 1.10)"
    )
    print(
        f"  warm  {d['warm_s'] * 1e3:7.2f} ms {d['warm_frames_per_s']:8.0f} frames/s   "
        f"ratio vs script {d['ratio_warm_vs_script']:.4f}x"
    )
    print(
        f"  plain script {d['peer_script_s']:6.2f} s  {d['peer_frames_per_s']:6.1f} frames/s"
        f"   recall {d['recall']:.3f} (script {d['peer_recall']:.3f})"
    )
    print(
        "  per stage (cold): " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in d["stage_s"].items())
    )
    s = bench_stream(mib)
    print(
        f"streamed STFT: {s['recording_mib']:.0f} MiB recording -> "
        f"{s['spectrogram_mib']:.0f} MiB spectrogram, {CHUNK_MIB} MiB chunks"
    )
    print(
        f"  peak RSS +{s['peak_rss_growth_mib']:.0f} MiB (budget {s['budget_mib']} MiB: "
        f"{'ok' if s['within_budget'] else 'OVER'})   read {s['stage_s']['read']:.1f} s, "
        f"stft {s['stage_s']['stft']:.1f} s vs numpy loop {s['peer_numpy_loop_stft_s']:.1f} s "
        f"({s['ratio_stft_vs_peer']:.2f}x)"
    )
    print(write_results("rf", {"quick": args.quick, "detect": d, "stream": s}))


if __name__ == "__main__":
    main()
