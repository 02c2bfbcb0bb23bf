"""``neuro.likelihood``: Poisson log-likelihood of every time bin at every position bin.

``ll[t, s] = sum_n k[t, n] log(lambda_n(s) dt) - dt sum_n lambda_n(s) - sum_n log(k[t, n]!)``
(independent Poisson cells given the position). It is a (T, S) array streamed chunk by chunk
from the spikes read lazily; each chunk is computed through ``ctx.memo`` (keyed by the chunk's
spike counts, the fitted rates and dt), so a longer recording with the same prefix recomputes
only its new chunks (``memo: false`` turns that off and saves the duplicate copy in the store).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from .posterior import DigestedArray
from .writer import BackgroundWriter

log = logging.getLogger("physflow.stages.neuro")

LoglikDtype = Literal["float32", "float64"]


class LikelihoodConfig(pf.Config):
    chunk_size: Annotated[int, msgspec.Meta(gt=0)] = 25_000
    #: Storage dtype of the log-likelihood (float32 halves the file; float64 for exact tests).
    dtype: LoglikDtype = "float32"
    #: Cache each chunk in the store (reuse when time bins are appended).
    memo: bool = True

    def __post_init__(self) -> None:
        check_range(self, "chunk_size", gt=0)
        check_choice(self, "dtype", LoglikDtype)


def poisson_loglik(
    counts: np.ndarray, log_rate_dt: DigestedArray, rate_sum_dt: DigestedArray, dtype: str
) -> np.ndarray:
    """One chunk: counts (C, N) -> log-likelihood (C, S) in ``dtype``."""
    from scipy.special import gammaln

    k = np.asarray(counts, dtype=np.float64)
    ll = k @ log_rate_dt.array
    ll -= rate_sum_dt.array[None, :]
    ll -= gammaln(k + 1.0).sum(axis=1)[:, None]
    return ll.astype(dtype)


@pf.stage(version="1", lazy=["spikes"], deps=[poisson_loglik, DigestedArray, BackgroundWriter])
def likelihood(cfg: LikelihoodConfig, spikes: Any, encoding: Any, *, ctx: pf.StageContext) -> Any:
    """(T, S) log-likelihood from spikes (T, N) and an :class:`~.encode.Encoding`."""
    rates = np.asarray(encoding.rates_hz, dtype=np.float64)
    n_time, n_cells = spikes.shape
    if rates.shape[0] != n_cells:
        raise ValueError(
            f"likelihood: spikes has {n_cells} cells but the encoding has {rates.shape[0]}; "
            "both inputs must come from the same recording"
        )
    n_bins = rates.shape[1]
    log_rate_dt = DigestedArray(np.log(rates * encoding.dt_s))
    rate_sum_dt = DigestedArray(rates.sum(axis=0) * encoding.dt_s)
    chunk = min(cfg.chunk_size, n_time)
    out = ctx.output_array("value", (n_time, n_bins), cfg.dtype, chunks=(chunk, n_bins))
    before = ctx.memo_misses
    with BackgroundWriter() as writer:
        for k, a in enumerate(range(0, n_time, chunk)):
            counts = np.asarray(spikes[a : a + chunk].compute(scheduler="synchronous"))
            args = (counts, log_rate_dt, rate_sum_dt, cfg.dtype)
            block = ctx.memo(poisson_loglik, *args) if cfg.memo else poisson_loglik(*args)
            writer.put(out, (k, 0), block)
    if cfg.memo:
        done, n = ctx.memo_misses - before, out.grid[0]
        log.info("likelihood: computed %d of %d chunks (%d reused)", done, n, n - done)
    return out
