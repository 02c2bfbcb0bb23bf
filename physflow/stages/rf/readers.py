"""``rf.read_sigmf`` and ``rf.read_iq01``: recordings from files into the store, streamed.

A cache key covers a stage's config, not the files it opens, so these stages require the
file's content digest in their config (``blake3``, as Bazel requires a sha256 for downloads):
a file that changes no longer matches its digest and the stage fails, instead of a run
silently serving the old recording. ``recording_digest(path)`` (or ``python -m
physflow.stages.rf digest PATH``) computes it; a missing digest is an error that prints it.
The samples are copied chunk by chunk (``ctx.output_array``), so memory stays at one chunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import blake3
import msgspec
import numpy as np

import physflow as pf

from . import iq01, sigmf
from .iq import IQMeta, RecordingFormatError


def file_digest(path: str | Path, block: int = 16 * 2**20) -> str:
    """blake3 of a file's bytes, read in ``block``-sized pieces into one buffer (multithreaded
    hashing; memory stays at one block, where a memory map would grow RSS by the file)."""
    h = blake3.blake3()  # single-threaded: a pool would not survive fork (DataLoader workers)
    buf = bytearray(block)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def recording_digest(path: str | Path) -> str:
    """The digest the reader stages expect: for SigMF, of the meta and the data file; for
    IQ01 (any other name), of the file."""
    path = Path(path)
    if (
        path.suffix in (".sigmf-meta", ".sigmf-data")
        or path.with_name(path.name + ".sigmf-meta").exists()
    ):
        meta_path, data_path = sigmf.paths(path)
        h = blake3.blake3()
        h.update(b"physflow.rf.sigmf.v1\0")
        h.update(bytes.fromhex(file_digest(meta_path)))
        h.update(bytes.fromhex(file_digest(data_path)))
        return h.hexdigest()
    return file_digest(path)


def check_digest(stage: str, path: str, expected: str) -> None:
    if not Path(path).exists() and not sigmf.paths(path)[0].exists():
        raise FileNotFoundError(f"{stage}: config field 'path': no such file {path!r}")
    actual = recording_digest(path)
    if not expected:
        raise ValueError(
            f"{stage}: config field 'blake3' is required (the file's content is not part of "
            f"the cache key otherwise); for {path!r} set blake3: {actual}"
        )
    if actual != expected:
        raise ValueError(
            f"{stage}: {path!r} has changed: its blake3 is {actual}, the config says "
            f"{expected}; if the new content is intended, set blake3: {actual}"
        )


class ReadSigmfConfig(pf.Config):
    path: str
    #: recording_digest(path); required so that a changed file is never a cache hit.
    blake3: str = ""
    #: Samples per stored chunk (2**21 complex64 = 16 MiB).
    chunk_samples: Annotated[int, msgspec.Meta(gt=0)] = 2**21


class ReadIq01Config(pf.Config):
    path: str
    blake3: str = ""
    #: IQ01 headers carry no rates: the capture's sample rate and centre frequency.
    sample_rate_hz: Annotated[float, msgspec.Meta(gt=0.0)] = 20e6
    center_freq_hz: float = 0.0
    #: Every frame must have this many samples (0: any).
    frame_samples: Annotated[int, msgspec.Meta(ge=0)] = 0
    chunk_samples: Annotated[int, msgspec.Meta(gt=0)] = 2**21


class ChunkFeeder:
    """Writes pieces of any length into a 1-D output array, one whole chunk at a time."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.size = out.chunks[0]
        self.buf = np.empty(self.size, dtype=out.dtype)
        self.fill = 0
        self.index = 0

    def feed(self, piece: np.ndarray) -> None:
        pos = 0
        while pos < piece.shape[0]:
            take = min(self.size - self.fill, piece.shape[0] - pos)
            self.buf[self.fill : self.fill + take] = piece[pos : pos + take]
            self.fill += take
            pos += take
            if self.fill == self.size:
                self.flush()

    def flush(self) -> None:
        if self.fill:
            self.out.write_chunk((self.index,), self.buf[: self.fill])
            self.index += 1
            self.fill = 0


@pf.stage(
    version="1", outputs=["samples", "meta"], deps=[check_digest, recording_digest, ChunkFeeder]
)
def read_sigmf(cfg: ReadSigmfConfig, *, ctx: pf.StageContext) -> dict:
    """A SigMF recording as a stored complex64 array plus its IQMeta."""
    check_digest("rf.read_sigmf", cfg.path, cfg.blake3)
    meta = sigmf.read_meta(cfg.path)
    meta_path, data_path = sigmf.paths(cfg.path)
    n = sigmf.data_samples(data_path)
    if n == 0:
        raise RecordingFormatError(f"{data_path}: no samples")
    out = ctx.output_array("samples", (n,), np.complex64, chunks=(min(n, cfg.chunk_samples),))
    feeder = ChunkFeeder(out)
    with open(data_path, "rb") as fh:  # read, not memory-mapped: RSS stays at one chunk
        for lo in range(0, n, out.chunks[0]):
            piece = np.fromfile(fh, dtype=sigmf.SAMPLE, count=min(out.chunks[0], n - lo))
            feeder.feed(piece.astype(np.complex64, copy=False))
    feeder.flush()
    info = IQMeta(n_samples=n, **sigmf.iq_fields(meta, str(meta_path)))
    return {"samples": out, "meta": info}


@pf.stage(
    version="1", outputs=["samples", "meta"], deps=[check_digest, recording_digest, ChunkFeeder]
)
def read_iq01(cfg: ReadIq01Config, *, ctx: pf.StageContext) -> dict:
    """IQ01 frames joined into a stored complex64 array plus its IQMeta (start: frame 0)."""
    check_digest("rf.read_iq01", cfg.path, cfg.blake3)
    headers = iq01.scan(cfg.path, cfg.frame_samples or None)
    n = sum(h.num_samples for h in headers)
    out = ctx.output_array("samples", (n,), np.complex64, chunks=(min(n, cfg.chunk_samples),))
    feeder = ChunkFeeder(out)
    with open(cfg.path, "rb") as fh:
        for h in headers:
            fh.seek(h.offset)
            for lo in range(0, h.num_samples, out.chunks[0]):
                count = min(out.chunks[0], h.num_samples - lo)
                feeder.feed(np.fromfile(fh, dtype=iq01.SAMPLE, count=count))
    feeder.flush()
    info = IQMeta(
        sample_rate_hz=cfg.sample_rate_hz,
        center_freq_hz=cfg.center_freq_hz,
        start_time_us=headers[0].timestamp_us,
        n_samples=n,
    )
    return {"samples": out, "meta": info}
