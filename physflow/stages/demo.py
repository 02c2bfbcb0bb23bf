"""A small demo pack: a tone, additive noise, and signal power (the README's first pipeline)."""

from __future__ import annotations

import numpy as np

import physflow as pf


class ToneConfig(pf.Config):
    freq_hz: float = 1000.0
    sample_rate_hz: float = 48_000.0
    n_samples: int = 4096
    amplitude: float = 1.0


class NoiseConfig(pf.Config):
    sigma: float = 0.1


@pf.stage(version="1")
def tone(cfg: ToneConfig) -> np.ndarray:
    """A real sinusoid; its mean power is amplitude**2 / 2."""
    t = np.arange(cfg.n_samples) / cfg.sample_rate_hz
    return cfg.amplitude * np.sin(2 * np.pi * cfg.freq_hz * t)


@pf.stage(version="1")
def add_noise(cfg: NoiseConfig, signal: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise of standard deviation sigma."""
    return signal + cfg.sigma * rng.standard_normal(signal.shape)


@pf.stage(version="1")
def power(signal: np.ndarray) -> float:
    """Mean power of the signal."""
    return float(np.mean(np.abs(signal) ** 2))
