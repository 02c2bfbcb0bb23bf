"""Stages for the dask tests on shared stores (imported by worker processes by module path)."""

from __future__ import annotations

import os
import time

import numpy as np

import physflow as pf


class SlowConfig(pf.Config):
    index: int
    log_dir: str
    seconds: float = 0.0


@pf.stage(version="1")
def slow_block(cfg: SlowConfig) -> np.ndarray:
    """Announces its start (index and worker pid) in log_dir, then works for a while."""
    with open(os.path.join(cfg.log_dir, f"{cfg.index}.{os.getpid()}.start"), "w"):
        pass
    time.sleep(cfg.seconds)
    return np.arange(50_000, dtype=np.float64) * cfg.index


@pf.stage(version="1")
def block_total(x: np.ndarray) -> float:
    return float(np.asarray(x).sum())
