"""Stages used by the CLI tests (imported by path from specs)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import numpy as np

import physflow as pf


class ExplodeConfig(pf.Config):
    when_above: float = 0.0


@pf.stage(version="1")
def explode(cfg: ExplodeConfig, signal: np.ndarray) -> float:
    """Fails when the signal's peak exceeds the threshold (to test failed runs)."""
    peak = float(np.max(np.abs(signal)))
    if peak > cfg.when_above:
        raise ValueError(f"peak {peak:.3f} above {cfg.when_above}")
    return peak


class CountConfig(pf.Config):
    """Constrained fields, to check that type errors read as words."""

    n: Annotated[int, msgspec.Meta(gt=0)] = 4
    fraction: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    mode: Literal["fast", "exact"] = "fast"


@pf.stage(version="1")
def count(cfg: CountConfig) -> float:
    return cfg.n * cfg.fraction
