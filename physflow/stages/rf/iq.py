"""IQ recordings as values: complex64 samples plus the metadata needed to interpret them.

``IQ`` is a msgspec Struct, so a stage can return it and physflow stores it like any value (the
samples as a zarr array object, the metadata inline). Long recordings that do not fit in memory
travel as a plain sample array (streamed into the store, read lazily) beside an ``IQMeta``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np


class RecordingFormatError(ValueError):
    """A recording file (SigMF, IQ01) or an IQ value is malformed; the message names the file,
    the field or frame, and what was expected."""


class IQMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What a sample array needs to become a recording: rates, tuning and time."""

    sample_rate_hz: float
    center_freq_hz: float = 0.0
    #: Time of the first sample, microseconds since the Unix epoch (IQ01's header unit).
    start_time_us: int = 0
    n_samples: int = 0


class IQ(msgspec.Struct, frozen=True, kw_only=True):
    """Complex baseband samples (1-D complex64) with their sample rate, centre frequency and the
    time of the first sample."""

    samples: Any
    sample_rate_hz: float
    center_freq_hz: float = 0.0
    start_time_us: int = 0

    def __post_init__(self) -> None:
        check_samples(self.samples, "IQ.samples")
        if not (self.sample_rate_hz > 0 and np.isfinite(self.sample_rate_hz)):
            raise RecordingFormatError(
                f"IQ.sample_rate_hz = {self.sample_rate_hz!r} must be a finite number > 0"
            )

    @property
    def meta(self) -> IQMeta:
        return IQMeta(
            sample_rate_hz=self.sample_rate_hz,
            center_freq_hz=self.center_freq_hz,
            start_time_us=self.start_time_us,
            n_samples=int(self.samples.shape[0]),
        )

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate_hz


def check_samples(samples: Any, where: str) -> None:
    """Samples are a 1-D complex64 array (numpy, or dask for lazy recordings)."""
    dtype = getattr(samples, "dtype", None)
    ndim = getattr(samples, "ndim", None)
    if dtype is None or np.dtype(dtype) != np.complex64 or ndim != 1:
        got = f"{ndim}-D {dtype}" if dtype is not None else type(samples).__name__
        raise RecordingFormatError(
            f"{where} must be a 1-D complex64 array, got {got}; convert with "
            "np.asarray(x, dtype=np.complex64).ravel()"
        )


def split_recording(iq: Any, meta: IQMeta | None, where: str) -> tuple[Any, IQMeta]:
    """(samples, meta) from either an ``IQ`` value or a bare sample array plus its ``IQMeta``."""
    if isinstance(iq, IQ):
        return iq.samples, iq.meta
    check_samples(iq, f"{where}: input 'iq'")
    if meta is None:
        raise RecordingFormatError(
            f"{where}: input 'iq' is a bare sample array; connect input 'meta' to an IQMeta "
            "(e.g. 'read.meta' of rf.read_sigmf / rf.read_iq01) or pass an rf.IQ value"
        )
    if meta.n_samples and meta.n_samples != iq.shape[0]:
        raise RecordingFormatError(
            f"{where}: meta says {meta.n_samples} samples but the array has {iq.shape[0]}"
        )
    return iq, meta
