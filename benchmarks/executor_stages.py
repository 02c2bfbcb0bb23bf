"""Stages for benchmarks/executors.py, in an importable module: worker processes and dask
workers import stages by path (``executor_stages:trivial``), never as pickled code."""

from __future__ import annotations

import numpy as np

import physflow as pf


class Index(pf.Config):
    i: int


class Work(pf.Config):
    i: int
    size: int


@pf.stage(version="1")
def trivial(cfg: Index) -> int:
    return cfg.i


def plain(i: int) -> int:
    """The same work as ``trivial`` for dask's own delayed API."""
    return i


@pf.stage(version="2")
def numpy_work(cfg: Work) -> float:
    """CPU-bound numpy that releases the GIL: ufuncs over a cache-resident array (512 KiB),
    ``size`` times; single-threaded (no BLAS), so serial really uses one core."""
    x = np.random.default_rng(cfg.i).random(65_536)
    for _ in range(cfg.size):
        x = np.sin(x) + 0.5
    return float(x.sum())


@pf.stage(version="1")
def python_work(cfg: Work) -> int:
    """CPU-bound pure Python that holds the GIL."""
    acc = cfg.i
    for k in range(cfg.size):
        acc = (acc * 31 + k) % 1_000_003
    return acc


def raw_call(name: str, i: int, size: int) -> object:
    """The stage's plain function, for the raw multiprocessing.Pool reference (no physflow)."""
    stage = {"numpy_work": numpy_work, "python_work": python_work}[name]
    return stage.func(Work(i=i, size=size))
