"""Stages of the store fixture written by physflow 58974f7 (before the kernel rebuild and the
hardening of issues 11-12); see test_legacy_store.py. Do not edit: the fixture's keys were made
from this source."""

from __future__ import annotations

import numpy as np

import physflow as pf


class Gain(pf.Config):
    k: float = 2.0


class Window(pf.Config):
    """A config with a method a stage calls: its source now enters the config digest."""

    width: int = 64

    def taps(self) -> np.ndarray:
        return np.hanning(self.width)


@pf.stage(version="1")
def make() -> np.ndarray:
    return np.arange(4096, dtype=np.float64)


@pf.stage(version="1")
def scale(cfg: Gain, x: np.ndarray) -> np.ndarray:
    return x * cfg.k


@pf.stage(version="1")
def noise(x: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    return x + rng.standard_normal(x.shape)


@pf.stage(version="1", outputs=["low", "high", "label"])
def split(x: np.ndarray) -> dict:
    half = len(x) // 2
    return {"low": x[:half], "high": x[half:], "label": f"split of {len(x)}"}


@pf.stage(version="1")
def smooth(cfg: Window, x: np.ndarray) -> np.ndarray:
    return np.convolve(x, cfg.taps() / cfg.taps().sum(), mode="same")


@pf.stage(version="1")
def total(x: np.ndarray) -> float:
    return float(np.sum(x))


def pipeline() -> pf.Pipeline:
    p = pf.Pipeline("legacy", seed=7)
    p.add("make", make)
    p.add("scale", scale, Gain(), x="make")
    p.add("noise", noise, x="scale")
    p.add("split", split, x="noise")
    p.add("smooth", smooth, Window(), x="split.low")
    p.add("total", total, x="split.high")
    p.add("smoothed_total", total, x="smooth")
    return p
