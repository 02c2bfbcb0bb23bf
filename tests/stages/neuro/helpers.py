"""A small decoding pipeline for the tests (S=40 bins, 30 cells, a few thousand bins)."""

from __future__ import annotations

import re

import physflow as pf
from physflow.stages.neuro import (
    EncodeConfig,
    FilterConfig,
    LikelihoodConfig,
    SimulateConfig,
    SmootherConfig,
    decode_pipeline,
)


def small_pipeline(
    n_time: int = 6000,
    chunk: int = 1000,
    *,
    filter_chunk: int | None = None,
    dtype: str = "float64",
    backend: str = "numpy",
    persist_causal: bool = True,
    reuse_causal: bool = True,
    loglik_dtype: str = "float64",
    n_train: int = 3000,
) -> pf.Pipeline:
    return decode_pipeline(
        "neuro_test",
        seed=7,
        simulate_config=SimulateConfig(
            n_time=n_time, n_cells=30, track_cm=100.0, chunk_size=chunk, step_std_cm=1.0
        ),
        encode_config=EncodeConfig(n_bins=40, n_train=n_train, bandwidth_cm=3.0),
        likelihood_config=LikelihoodConfig(chunk_size=chunk, dtype=loglik_dtype),
        filter_config=FilterConfig(
            chunk_size=filter_chunk or chunk,
            posterior_dtype=dtype,
            backend=backend,
            persist_causal=persist_causal,
        ),
        smoother_config=SmootherConfig(
            posterior_dtype=dtype, backend=backend, reuse_causal=reuse_causal
        ),
    )


def run(p: pf.Pipeline, store) -> pf.RunResult:
    res = p.run(store=store)
    assert res.ok, res.errors
    return res


def computed_chunks(caplog, stage: str) -> tuple[int, int]:
    """(computed, total) from the last '<stage>: computed X of Y chunks' log line."""
    found = [
        re.search(rf"{stage}: computed (\d+) of (\d+) chunks", r.getMessage())
        for r in caplog.records
    ]
    found = [m for m in found if m]
    assert found, f"no '{stage}: computed' log line"
    return int(found[-1].group(1)), int(found[-1].group(2))
