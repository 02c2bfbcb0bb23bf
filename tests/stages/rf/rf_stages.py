"""Helper stages for the rf tests (module level, so their fingerprints are stable)."""

from __future__ import annotations

import numpy as np

import physflow as pf
from physflow.stages.rf import IQ


class NoiseConfig(pf.Config):
    n: int = 1000
    sample_rate_hz: float = 1e6
    center_freq_hz: float = 100e6
    start_time_us: int = 123


@pf.stage(version="1")
def make_iq(cfg: NoiseConfig, *, rng: np.random.Generator) -> IQ:
    x = rng.standard_normal(2 * cfg.n, dtype=np.float32).view(np.complex64)
    return IQ(
        samples=x,
        sample_rate_hz=cfg.sample_rate_hz,
        center_freq_hz=cfg.center_freq_hz,
        start_time_us=cfg.start_time_us,
    )


@pf.stage(version="1")
def iq_power(iq) -> float:
    """Reads the IQ value back: type, metadata and samples."""
    assert isinstance(iq, IQ), type(iq)
    return float(np.mean(np.abs(iq.samples) ** 2)) + iq.sample_rate_hz * 0.0
