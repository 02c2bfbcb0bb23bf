"""Recordings from files into the store (content-pinned), and the STFT streamed over a
recording many chunks long at O(chunk) memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import physflow as pf
from physflow.stages.rf import (
    IQ,
    ReadIq01Config,
    ReadSigmfConfig,
    StftConfig,
    iq01,
    read_iq01,
    read_sigmf,
    recording_digest,
    sigmf,
    stft,
)

pytest.importorskip("dask.array")


def _recording(n=200_000, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
    return IQ(samples=x, sample_rate_hz=2e6, center_freq_hz=433e6, start_time_us=10**15)


def _stft_cfg(**kw):
    return StftConfig(n_fft=256, hop=128, frame_samples=20_000, **kw)


@pytest.mark.parametrize("fmt", ["sigmf", "iq01"])
def test_readers_stream_files_into_the_store_and_feed_stft(tmp_path, store, fmt):
    iq = _recording()
    if fmt == "sigmf":
        sigmf.write(tmp_path / "rec", iq)
        path = str(tmp_path / "rec.sigmf-meta")
        cfg = ReadSigmfConfig(path=path, blake3=recording_digest(path), chunk_samples=30_000)
        reader = read_sigmf
    else:
        path = str(tmp_path / "rec.iq01")
        iq01.write_iq(path, iq, 20_000)
        cfg = ReadIq01Config(
            path=path,
            blake3=recording_digest(path),
            sample_rate_hz=2e6,
            center_freq_hz=433e6,
            frame_samples=20_000,
            chunk_samples=30_000,
        )
        reader = read_iq01
    p = pf.Pipeline("read")
    p.add("read", reader, cfg)
    p.add("stft", stft, _stft_cfg(chunk_frames=3), iq="read.samples", meta="read.meta")
    res = p.run(store=store).raise_on_failure()
    assert res.digest("read.samples") == pf.digest(iq.samples)  # bit-exact, 7 chunks
    meta = res["read.meta"]
    assert (meta.sample_rate_hz, meta.center_freq_hz, meta.start_time_us, meta.n_samples) == (
        2e6,
        433e6,
        10**15,
        200_000,
    )
    # the same transform of the in-memory IQ value (one chunk) stores the same bytes
    direct = stft.func(_stft_cfg(), iq, ctx=pf.StageContext(store))
    assert direct["power"].digest == res.digest("stft.power")
    assert p.run(store=store).misses == []


def test_reader_requires_and_checks_the_content_digest(tmp_path, store):
    path = tmp_path / "r.iq01"
    iq01.write_iq(path, _recording(1000), 500)
    good = recording_digest(path)
    p = pf.Pipeline("r")
    p.add("read", read_iq01, ReadIq01Config(path=str(path)))
    err = p.run(store=store).errors["read"]
    assert "'blake3' is required" in err and good in err
    p = pf.Pipeline("r")
    p.add("read", read_iq01, ReadIq01Config(path=str(path), blake3=good))
    assert p.run(store=store).ok
    iq01.write_iq(path, _recording(1000, seed=4), 500)  # the file changes under the same path
    p = pf.Pipeline("r")
    p.add("read", read_iq01, ReadIq01Config(path=str(path), blake3=good, chunk_samples=999))
    err = p.run(store=store).errors["read"]
    assert "has changed" in err and recording_digest(path) in err
    p = pf.Pipeline("r")
    p.add("read", read_iq01, ReadIq01Config(path=str(tmp_path / "none.iq01"), blake3=good))
    assert "no such file" in p.run(store=store).errors["read"]


def test_stft_needs_meta_for_a_bare_sample_array(store):
    from physflow.stages.rf import RecordingFormatError

    x = np.zeros(50_000, np.complex64)
    with pytest.raises(RecordingFormatError, match="connect input 'meta'"):
        stft.func(_stft_cfg(), x, ctx=pf.StageContext(store))
    with pytest.raises(ValueError, match="fewer than one frame"):
        stft.func(_stft_cfg(), _recording(1000), ctx=pf.StageContext(store))


STREAM_SCRIPT = """
import numpy as np
import physflow as pf
from physflow.stages.rf import ReadIq01Config, StftConfig, iq01, read_iq01, recording_digest, stft
import dask.array, scipy.ndimage  # imports are not the stage's memory

def status(field):  # this process only (ru_maxrss would be inherited from pytest)
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith(field + ":"))

FRAME, N_FRAMES = {frame}, {n_frames}


def pipeline(path, n_frames, name):
    rng = np.random.default_rng(0)
    frames = (iq01.Frame(timestamp_us=i, frame_idx=i,
                         samples=rng.standard_normal(2 * FRAME, dtype=np.float32).view(
                             np.complex64))
              for i in range(n_frames))
    iq01.write_frames(path, frames)  # written frame by frame
    p = pf.Pipeline(name)
    p.add("read", read_iq01, ReadIq01Config(path=path, blake3=recording_digest(path),
                                            sample_rate_hz=1e6, frame_samples=FRAME,
                                            chunk_samples={chunk_samples}))
    p.add("stft", stft, StftConfig(n_fft=1024, hop=512, frame_samples=FRAME,
                                   chunk_frames={chunk_frames}),
          iq="read.samples", meta="read.meta")
    return p


# a one-frame run first loads every module the run uses: imported code is not data memory
pipeline({path!r} + ".warm", 1, "warm").run(store=pf.Store({store!r} + "-warm"))
p = pipeline({path!r}, N_FRAMES, "stream")
base = status("VmRSS")
res = p.run(store=pf.Store({store!r})).raise_on_failure()
grown = (status("VmHWM") - base) / 1024
print(grown, {n_frames} * {frame} * 8 / 2**20)
"""


@pytest.mark.slow
def test_streamed_stft_memory_is_o_chunk(tmp_path):
    """A 128 MiB recording in 8 MiB chunks -> a 127 MiB spectrogram in 4 MiB chunks (16 and
    32 chunks): peak RSS grows by a few chunks, never by the recording or the spectrogram
    (128 MiB each)."""
    frame, n_frames = 2**16, 256
    code = STREAM_SCRIPT.format(
        frame=frame,
        n_frames=n_frames,
        path=str(tmp_path / "r.iq01"),
        chunk_samples=2**20,
        chunk_frames=8,
        store=str(tmp_path / "store"),
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    grown, size = (float(v) for v in done.stdout.split())
    assert size == 128
    store = pf.Store(tmp_path / "store")
    chunks = [p for p in store.objects_dir.rglob("*") if p.is_file() and p.name != "zarr.json"]
    assert len(chunks) == 16 + 32  # both arrays were stored as >= 4x their chunk size
    print(f"peak RSS +{grown:.1f} MiB")
    assert grown < 40, f"peak RSS grew by {grown:.0f} MiB for a {size:.0f} MiB recording"


def test_digest_command_prints_what_the_readers_expect(tmp_path, capsys):
    from physflow.stages.rf.__main__ import main

    sigmf.write(tmp_path / "rec", _recording(100))
    assert main(["digest", str(tmp_path / "rec.sigmf-data")]) == 0
    out = capsys.readouterr().out
    assert out.split()[0] == recording_digest(tmp_path / "rec.sigmf-meta")
    assert main(["nope"]) == 2
