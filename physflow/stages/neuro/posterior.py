"""How posteriors are stored: float64/float32/float16, or uint16-quantised.

Quantisation scheme (``posterior_dtype: uint16``): every probability ``p`` in [0, 1] is stored as
``q = round(p * 65535)`` and read back as ``p' = q / 65535``. The error of every entry is at most
half a step, ``0.5 / 65535 = 7.63e-6``, whatever the number of position bins, and the scheme is
exactly CF packing with ``scale_factor = 1/65535`` (NetCDF readers decode it themselves). Rows
decoded this way sum to 1 within ``S * 7.63e-6``; entries below ``7.63e-6`` read as 0.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

PosteriorDtype = Literal["float32", "float16", "uint16", "float64"]
Precision = Literal["float64", "float32"]
Backend = Literal["numpy", "jax"]

#: One quantisation step of the uint16 scheme (see the module docstring).
UINT16_SCALE = 1.0 / 65535.0


def encode_posterior(p: np.ndarray, dtype: str) -> np.ndarray:
    """Probabilities (any float dtype) -> the stored representation ``dtype``."""
    if dtype == "uint16":
        q = np.rint(np.asarray(p, dtype=np.float64) * 65535.0)
        return np.clip(q, 0.0, 65535.0).astype(np.uint16)
    return np.asarray(p).astype(np.dtype(dtype), copy=False)


def decode_posterior(stored: Any) -> Any:
    """The stored representation -> probabilities (float32, or float64 if stored so).

    Works on numpy and dask arrays alike (dask stays lazy)."""
    kind = np.dtype(stored.dtype)
    if kind == np.uint16:
        return stored.astype(np.float32) * np.float32(UINT16_SCALE)
    if kind == np.float16:
        return stored.astype(np.float32)
    return stored


def is_exact_enough(dtype: Any) -> bool:
    """Whether a stored causal posterior can stand in for the filter's own (see smoother)."""
    return np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64))


class DigestedArray:
    """A read-only array that digests as its precomputed content digest.

    ``ctx.memo`` digests every argument on every call; a (S, S) transition matrix passed to each
    of thousands of chunk calls would be hashed each time (800 MB at S = 10,000). This wrapper
    is hashed once, by ``pf.digest`` of the array itself, so the memo key still depends on every
    byte of the matrix."""

    __slots__ = ("array", "digest")

    def __init__(self, array: np.ndarray) -> None:
        import physflow as pf

        array = np.array(array, copy=True)
        array.setflags(write=False)
        self.array = array
        self.digest = pf.digest(array)

    def __physflow_digest__(self) -> bytes:
        return self.digest.encode()

    def __repr__(self) -> str:
        return f"<DigestedArray {self.array.shape} {self.array.dtype} {self.digest[:12]}>"
