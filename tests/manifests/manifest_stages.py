"""Stages for the manifest tests."""

from __future__ import annotations

import numpy as np

import physflow as pf


class WaveConfig(pf.Config):
    n: int = 50_000
    amplitude: float = 2.0


@pf.stage(version="1", outputs=["signal", "stats"])
def wave(cfg: WaveConfig) -> dict:
    x = cfg.amplitude * np.cos(np.linspace(0, 20 * np.pi, cfg.n, endpoint=False))
    return {"signal": x, "stats": {"peak": float(np.max(x)), "n": cfg.n}}


wave.units = {"signal": "V"}


@pf.stage(version="1")
def mean_power(signal: np.ndarray) -> float:
    return float(np.mean(signal**2))


mean_power.units = "W"


@pf.stage(version="1")
def interrupt(signal: np.ndarray) -> float:
    raise KeyboardInterrupt


@pf.stage(version="1")
def broken(signal: np.ndarray) -> float:
    raise RuntimeError("this stage always fails")
