"""Stages used by the trust-hardening tests (importable by worker processes)."""

from __future__ import annotations

import msgspec
import numpy as np

import physflow as pf


class Taps(pf.Config):
    taps: list[float] = []
    weights: dict[str, float] = {}
    window: np.ndarray | None = None


@pf.stage(version="1")
def fir_sum(cfg: Taps) -> float:
    total = float(sum(cfg.taps)) + float(sum(cfg.weights.values()))
    return total + (float(cfg.window.sum()) if cfg.window is not None else 0.0)


@pf.stage(version="1")
def grow_default(x: float, history: list = []) -> int:  # noqa: B006  (the trap under test)
    history.append(x)
    return len(history)


@pf.stage(version="1")
def const() -> float:
    return 1.0


class Loose(msgspec.Struct):
    value: float = 0.0


class HoldsLoose(pf.Config):
    inner: Loose | None = None


class Opaque:
    """A class with no codec: storable only with pickle (opt-in)."""

    def __init__(self, n: int) -> None:
        self.n = n


class Size(pf.Config):
    mib: float = 1.0


@pf.stage(version="1")
def block(cfg: Size) -> np.ndarray:
    return np.ones(int(cfg.mib * (1 << 20) / 8))
