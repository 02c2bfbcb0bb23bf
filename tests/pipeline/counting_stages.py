"""Stages that count their executions in-process (for cache-semantics tests on serial runs)."""

from __future__ import annotations

from collections import Counter

import numpy as np

import physflow as pf

CALLS: Counter[str] = Counter()


class Level(pf.Config):
    value: float = 1.0


class Scale(pf.Config):
    factor: float = 2.0


@pf.stage(version="1")
def source(cfg: Level) -> np.ndarray:
    CALLS["source"] += 1
    return np.full(1000, cfg.value)


@pf.stage(version="1")
def rounded(cfg: Level) -> int:
    """Many configs give the same output: used to show early cut-off."""
    CALLS["rounded"] += 1
    return round(cfg.value)


@pf.stage(version="1")
def scale(cfg: Scale, x: np.ndarray | int) -> np.ndarray:
    CALLS["scale"] += 1
    return np.asarray(x) * cfg.factor


@pf.stage(version="1")
def total(x: np.ndarray) -> float:
    CALLS["total"] += 1
    return float(np.sum(x))


@pf.stage(version="1")
def noise(cfg: Scale, *, rng: np.random.Generator) -> np.ndarray:
    CALLS["noise"] += 1
    return cfg.factor * rng.standard_normal(64)


@pf.stage(version="1", outputs=["low", "high"])
def split(x: np.ndarray) -> dict:
    CALLS["split"] += 1
    half = len(x) // 2
    return {"low": x[:half], "high": x[half:]}


@pf.stage(version="1")
def global_rng_user(cfg: Scale) -> float:
    CALLS["global"] += 1
    return float(np.random.random() * cfg.factor)


@pf.stage(version="1")
def lazy_importer(cfg: Scale) -> float:
    """Imports, inside the stage, a module whose import draws global random numbers."""
    import importlib

    importlib.import_module("tests.pipeline.draws_on_import")
    return cfg.factor
