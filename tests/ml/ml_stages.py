"""Small stages for the ML dataset tests (importable by worker processes)."""

from __future__ import annotations

import os
import time

import numpy as np

import physflow as pf

COUNT_ENV = "PHYSFLOW_ML_TEST_COUNT_FILE"
STALL_ENV = "PHYSFLOW_ML_TEST_STALL_AFTER"


def _count() -> None:
    """Append one byte per call to the file named by $PHYSFLOW_ML_TEST_COUNT_FILE (counts calls
    across processes); stall forever once $PHYSFLOW_ML_TEST_STALL_AFTER calls were made."""
    path = os.environ.get(COUNT_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    stall = os.environ.get(STALL_ENV)
    if stall and os.path.getsize(path) >= int(stall):
        while True:  # wait to be killed (the kill -9 test)
            time.sleep(0.05)


def calls(path) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


class SignalCfg(pf.Config):
    n: int = 16
    amplitude: float = 1.0
    offset: float = 0.0
    kind: str = "sine"


class NoiseCfg(pf.Config):
    sigma: float = 0.1


class BoxCfg(pf.Config):
    max_boxes: int = 5


@pf.stage(version="1", outputs=["wave", "info"])
def signal(cfg: SignalCfg, *, rng: np.random.Generator) -> dict:
    _count()
    t = np.arange(cfg.n) / cfg.n
    phase = rng.uniform(0, 2 * np.pi)
    base = np.sin(2 * np.pi * t + phase) if cfg.kind == "sine" else np.sign(np.sin(2 * np.pi * t))
    return {
        "wave": (cfg.amplitude * base + cfg.offset).astype(np.float32),
        "info": {"phase": float(phase), "kind": cfg.kind},
    }


@pf.stage(version="1")
def noisy(cfg: NoiseCfg, wave: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    return wave + np.float32(cfg.sigma) * rng.standard_normal(wave.shape).astype(np.float32)


@pf.stage(version="1")
def energy(x: np.ndarray) -> float:
    return float(np.sum(x.astype(np.float64) ** 2))


@pf.stage(version="1")
def boxes(cfg: BoxCfg, *, rng: np.random.Generator) -> np.ndarray:
    """Detection-like boxes: a variable number of (x, y, w, h) rows per sample."""
    k = int(rng.integers(0, cfg.max_boxes + 1))
    return rng.uniform(0, 1, size=(k, 4))


def pipeline(seed: int = 3) -> pf.Pipeline:
    p = pf.Pipeline("mltest", seed=seed)
    p.add("signal", signal, SignalCfg())
    p.add("noisy", noisy, NoiseCfg(), wave="signal.wave")
    p.add("energy", energy, x="noisy")
    p.add("boxes", boxes, BoxCfg())
    return p


VARY = {
    "signal.amplitude": {"uniform": [0.5, 2.0]},
    "signal.kind": {"choice": ["sine", "square"]},
    "noisy.sigma": {"loguniform": [0.01, 1.0]},
}
OUTPUTS = {"x": "noisy", "y": "energy", "phase": "signal.info.phase"}
