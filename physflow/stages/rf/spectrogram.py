"""``rf.stft`` and ``rf.normalize``: frame-by-frame spectrograms written chunk by chunk.

Both stages take their big input lazily (a dask array over the stored chunks) and stream their
output through ``ctx.output_array``, so a recording larger than memory costs about one chunk
of frames. Each frame is timed (see :mod:`.latency`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from . import dsp
from .iq import IQMeta, split_recording
from .timing import FrameTimer
from .xp import BackendName, NumpyBackend, get_backend

Window = Literal["hann"]
ImageDtype = Literal["uint8", "float16", "float32"]
#: Target size of one output chunk when ``chunk_frames`` is 0 (auto).
CHUNK_BYTES = 16 * 2**20


class SpecAxes(msgspec.Struct, frozen=True, kw_only=True):
    """Where each spectrogram cell (frame, column, bin) sits in time and frequency."""

    n_fft: int
    hop: int
    frame_samples: int
    n_frames: int
    cols: int
    sample_rate_hz: float
    center_freq_hz: float = 0.0
    start_time_us: int = 0
    dropped_samples: int = 0

    def col_time_s(self, frame: Any, col: Any) -> Any:
        """Centre of a column's window, seconds from the start of the recording."""
        return (
            np.asarray(frame) * self.frame_samples + np.asarray(col) * self.hop + self.n_fft / 2
        ) / self.sample_rate_hz

    def bin_freq_hz(self, k: Any) -> Any:
        return (np.asarray(k) - self.n_fft // 2) * (self.sample_rate_hz / self.n_fft)

    def cell_box(self, frame: int, col0: int, col1: int, bin0: int, bin1: int) -> tuple:
        """[t0, t1, f0, f1] covered by cells col0..col1, bin0..bin1 (inclusive): a column
        stands for hop samples around its centre, a bin for fs/N around its frequency."""
        half_t = self.hop / (2 * self.sample_rate_hz)
        half_f = self.sample_rate_hz / (2 * self.n_fft)
        return (
            float(self.col_time_s(frame, col0) - half_t),
            float(self.col_time_s(frame, col1) + half_t),
            float(self.bin_freq_hz(bin0) - half_f),
            float(self.bin_freq_hz(bin1) + half_f),
        )


class StftConfig(pf.Config):
    n_fft: Annotated[int, msgspec.Meta(ge=2)] = 4096
    hop: Annotated[int, msgspec.Meta(ge=1)] = 2048
    window: Window = "hann"
    #: Samples per frame; frames are transformed independently (33 ms at 20 MS/s).
    frame_samples: Annotated[int, msgspec.Meta(ge=2)] = 660_000
    #: Frames per stored chunk (0: about 16 MiB of spectrogram). Execution only.
    chunk_frames: Annotated[int, msgspec.Meta(ge=0)] = 0
    #: Array module for the transform. Execution only.
    backend: BackendName = "numpy"

    def __post_init__(self) -> None:
        check_range(self, "n_fft", ge=2)
        check_range(self, "hop", ge=1)
        check_range(self, "chunk_frames", ge=0)
        check_choice(self, "window", Window)
        check_choice(self, "backend", BackendName)
        if self.frame_samples < self.n_fft:
            raise ValueError(
                f"StftConfig.frame_samples = {self.frame_samples} must be >= n_fft = {self.n_fft}"
            )


def frames_per_chunk(requested: int, bytes_per_frame: int, n_frames: int) -> int:
    if requested:
        return min(requested, n_frames)
    return max(1, min(n_frames, CHUNK_BYTES // max(1, bytes_per_frame)))


def read_rows(x: Any, lo: int, hi: int) -> np.ndarray:
    """x[lo:hi] as numpy, reading only the chunks it needs when ``x`` is a dask array."""
    part = x[lo:hi]
    return np.asarray(part.compute() if hasattr(part, "compute") else part)


@pf.stage(
    version="1",
    outputs=["power", "axes", "latency"],
    lazy=["iq"],
    deps=[
        NumpyBackend,
        dsp.hann,
        dsp.stft_power,
        dsp.columns_per_frame,
        frames_per_chunk,
        read_rows,
        split_recording,
        SpecAxes,
    ],
)
def stft(cfg: StftConfig, iq: Any, meta: IQMeta | None = None, *, ctx: pf.StageContext) -> dict:
    """Hann STFT power of each frame, (n_frames, cols, n_fft) float32, fft-shifted."""
    samples, info = split_recording(iq, meta, "rf.stft")
    n_frames = samples.shape[0] // cfg.frame_samples
    if n_frames == 0:
        raise ValueError(
            f"rf.stft: the recording has {samples.shape[0]} samples, fewer than one frame "
            f"(frame_samples = {cfg.frame_samples}); lower frame_samples"
        )
    cols = dsp.columns_per_frame(cfg.frame_samples, cfg.n_fft, cfg.hop)
    per_chunk = frames_per_chunk(cfg.chunk_frames, cols * cfg.n_fft * 4, n_frames)
    be = get_backend(cfg.backend)
    out = ctx.output_array(
        "power", (n_frames, cols, cfg.n_fft), np.float32, chunks=(per_chunk, cols, cfg.n_fft)
    )
    timer = FrameTimer()
    for f0 in range(0, n_frames, per_chunk):
        f1 = min(n_frames, f0 + per_chunk)
        block = read_rows(samples, f0 * cfg.frame_samples, f1 * cfg.frame_samples)
        block = block.reshape(f1 - f0, cfg.frame_samples)
        power = np.empty((f1 - f0, cols, cfg.n_fft), dtype=np.float32)
        for i in range(f1 - f0):
            with timer.frame():
                spec = dsp.stft_power(be, block[i : i + 1], cfg.n_fft, cfg.hop)
                power[i] = be.to_numpy(spec)[0]
        out[f0:f1] = power
        del block, power
    axes = SpecAxes(
        n_fft=cfg.n_fft,
        hop=cfg.hop,
        frame_samples=cfg.frame_samples,
        n_frames=n_frames,
        cols=cols,
        sample_rate_hz=info.sample_rate_hz,
        center_freq_hz=info.center_freq_hz,
        start_time_us=info.start_time_us,
        dropped_samples=int(samples.shape[0] - n_frames * cfg.frame_samples),
    )
    return {"power": out, "axes": axes, "latency": timer.summary()}


class NormalizeConfig(pf.Config):
    #: Dynamic-range window: values more than this far below the reference are clipped.
    range_db: Annotated[float, msgspec.Meta(gt=0.0)] = 80.0
    #: Reference level in dB (power units of rf.stft); null: each frame's maximum.
    ref_db: float | None = None
    #: Model-input image: null for none, else its dtype ([0, 1] scaled; uint8 = round(255 x)).
    image_dtype: ImageDtype | None = None
    #: Image size (time px, freq px) by area resampling; null keeps the spectrogram's size.
    image_shape: tuple[int, int] | None = None
    #: Array module. Execution only.
    backend: BackendName = "numpy"

    def __post_init__(self) -> None:
        check_range(self, "range_db", gt=0.0)
        check_choice(self, "backend", BackendName)
        if self.image_dtype is not None:
            check_choice(self, "image_dtype", ImageDtype)
        if self.image_shape is not None and min(self.image_shape) < 1:
            raise ValueError(
                f"NormalizeConfig.image_shape = {list(self.image_shape)} must be two sizes >= 1"
            )


@pf.stage(
    version="1",
    outputs=["db", "image", "latency"],
    lazy=["power"],
    deps=[
        NumpyBackend,
        dsp.to_db_window,
        dsp.TINY_POWER,
        dsp.resize,
        dsp.area_matrix,
        dsp.quantize,
        read_rows,
    ],
)
def normalize(cfg: NormalizeConfig, power: Any, *, ctx: pf.StageContext) -> dict:
    """dB relative to the reference, clipped to [-range_db, 0] (``db``, float32), and the
    optional model image (window scaled to [0, 1], resized, cast)."""
    if getattr(power, "ndim", 0) != 3:
        raise ValueError(
            "rf.normalize: input 'power' must be (frames, cols, bins), e.g. 'stft.power'"
        )
    n_frames, cols, bins = power.shape
    per_chunk = power.chunksize[0] if hasattr(power, "chunksize") else n_frames
    be = get_backend(cfg.backend)
    db_out = ctx.output_array(
        "db", (n_frames, cols, bins), np.float32, chunks=(per_chunk, cols, bins)
    )
    img_out = None
    if cfg.image_dtype is not None:
        shape = tuple(cfg.image_shape or (cols, bins))
        img_out = ctx.output_array(
            "image", (n_frames, *shape), cfg.image_dtype, chunks=(per_chunk, *shape)
        )
    timer = FrameTimer()
    for f0 in range(0, n_frames, per_chunk):
        f1 = min(n_frames, f0 + per_chunk)
        block = read_rows(power, f0, f1)
        rel_block = np.empty(block.shape, dtype=np.float32)
        images = []
        for i in range(f1 - f0):
            with timer.frame():
                rel, image = dsp.to_db_window(be, block[i], cfg.range_db, cfg.ref_db)
                rel_block[i] = be.to_numpy(rel)
                if img_out is not None:
                    if cfg.image_shape is not None:
                        image = dsp.resize(be, image, cfg.image_shape)
                    images.append(dsp.quantize(be.to_numpy(image), cfg.image_dtype))
        db_out[f0:f1] = rel_block
        if img_out is not None:
            img_out[f0:f1] = np.stack(images)
    return {"db": db_out, "image": img_out, "latency": timer.summary()}
