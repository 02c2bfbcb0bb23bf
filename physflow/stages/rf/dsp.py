"""Spectrogram kernels: Hann STFT power, dB with a dynamic-range window, area resize.

Conventions (tested in tests/stages/rf/test_stft.py):

- periodic Hann window ``w[m] = 0.5 - 0.5 cos(2 pi m / N)``: sum ``N/2`` (coherent gain),
  sum of squares ``3N/8``;
- power ``P[k] = |sum_m w[m] x[m] exp(-2j pi k m / N)|^2`` with no normalisation, so a tone of
  amplitude A on bin k gives ``(A N / 2)^2`` and white noise of variance s^2 gives a mean floor
  of ``s^2 3N/8`` per bin; Parseval per frame: ``sum_k P[k] = N sum_m |w[m] x[m]|^2``;
- bins are fft-shifted: index ``i`` is frequency ``(i - N/2) fs / N`` (baseband, Hz).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .xp import NumpyBackend

#: Power floor before the logarithm (float32 power never reaches it unless exactly zero).
TINY_POWER = 1e-30


def hann(n: int) -> np.ndarray:
    """Periodic Hann window (the DFT-even form scipy.signal.get_window('hann', n) returns)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def columns_per_frame(frame_samples: int, n_fft: int, hop: int) -> int:
    if frame_samples < n_fft:
        raise ValueError(f"frame_samples {frame_samples} is shorter than n_fft {n_fft}")
    return 1 + (frame_samples - n_fft) // hop


def stft_power(be: NumpyBackend, frames: Any, n_fft: int, hop: int) -> Any:
    """Power spectrogram of each frame: ``frames`` (m, F) complex64 -> (m, cols, n_fft) float32,
    fft-shifted along the last axis. Frames are independent (no window spans two frames)."""
    frames = be.asarray(frames)
    cols = columns_per_frame(frames.shape[-1], n_fft, hop)
    window = be.asarray(hann(n_fft))
    segments = be.windows(frames, n_fft, hop)[..., :cols, :] * window  # (m, cols, n_fft)
    spectrum = be.fft(segments, axis=-1)
    return be.fftshift(be.abs2(spectrum), axis=-1)


def bin_freqs_hz(n_fft: int, sample_rate_hz: float) -> np.ndarray:
    """Baseband frequency of each fft-shifted bin."""
    return (np.arange(n_fft) - n_fft // 2) * (sample_rate_hz / n_fft)


def to_db_window(
    be: NumpyBackend, power: Any, range_db: float, ref_db: float | None
) -> tuple[Any, Any]:
    """(relative dB clipped to [-range_db, 0], image in [0, 1]) per frame.

    The reference is the frame's maximum (``ref_db`` None) or a fixed level in dB; values more
    than ``range_db`` below it are clipped to the floor of the window.
    """
    power = be.asarray(power)
    db = 10.0 * be.log10(be.maximum(power, be.asarray(TINY_POWER, dtype=power.dtype)))
    if ref_db is None:
        ref = be.amax(be.amax(db, axis=-1, keepdims=True), axis=-2, keepdims=True)
    else:
        ref = be.asarray(ref_db, dtype=db.dtype)
    rel = be.clip(db - ref, -range_db, 0.0)
    image = (rel + range_db) / range_db
    return rel, image


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of area resampling: each output pixel is the mean of the input it
    covers (fractional overlaps weighted), so the mean of an image is preserved."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return (overlap / (n_in / n_out)).astype(np.float32)


def resize(be: NumpyBackend, images: Any, shape: tuple[int, int]) -> Any:
    """Area-resize the last two axes of ``images`` to ``shape`` (rows, cols)."""
    images = be.asarray(images)
    rows = be.asarray(area_matrix(images.shape[-2], shape[0]))
    cols = be.asarray(area_matrix(images.shape[-1], shape[1]))
    return rows @ images @ cols.T


def quantize(image: np.ndarray, dtype: str) -> np.ndarray:
    """[0, 1] image -> the stored model-input dtype (uint8: round(255 x))."""
    if dtype == "uint8":
        return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.asarray(image, dtype=np.dtype(dtype))
