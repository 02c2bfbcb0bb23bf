"""``neuro.summary``: MAP position, posterior entropy and decoding error, chunk by chunk.

For each time bin: ``map = centers[argmax_s p[t, s]]`` (the first maximum on ties), entropy
``H = -sum_s p log p`` in nats (``0 log 0 = 0``; the stored posterior as decoded, not
renormalised) and ``error = |map - true position|``. Metrics count the held-out bins
(``t >= encoding.n_train``) and all bins; memory is O(chunk).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_range
from .posterior import decode_posterior


class SummaryConfig(pf.Config):
    #: Threshold of the accuracy metric ``frac_within`` (fraction of bins with error <= it).
    within_cm: Annotated[float, msgspec.Meta(gt=0.0)] = 10.0

    def __post_init__(self) -> None:
        check_range(self, "within_cm", gt=0.0)


def entropy_nats(p: np.ndarray) -> np.ndarray:
    """Row entropies ``-sum p log p`` with ``0 log 0 = 0`` (scipy's ``entr``, in float64)."""
    from scipy.special import entr

    return entr(np.asarray(p, dtype=np.float64)).sum(axis=1)


@pf.stage(
    version="1",
    outputs=["map_position", "entropy", "error", "metrics"],
    lazy=["posterior", "position"],
    deps=[entropy_nats, decode_posterior],
)
def summary(
    cfg: SummaryConfig, posterior: Any, position: Any, encoding: Any, *, ctx: pf.StageContext
) -> dict[str, Any]:
    """Per-bin MAP/entropy/error arrays and scalar metrics of a (T, S) posterior."""
    n_time, s = posterior.shape
    centers = 0.5 * (encoding.edges_cm[:-1] + encoding.edges_cm[1:])
    if len(centers) != s or position.shape[0] != n_time:
        raise ValueError(
            f"summary: posterior is {posterior.shape} but the grid has {len(centers)} bins and "
            f"the position {position.shape[0]} samples; connect inputs of one pipeline"
        )
    chunk = int(posterior.chunks[0][0])
    outs = {
        name: ctx.output_array(name, (n_time,), np.float32, chunks=(chunk,))
        for name in ("map_position", "entropy", "error")
    }
    held_out = min(int(encoding.n_train), n_time)
    hits = hits_all = 0
    sum_err = sum_sq = sum_h = 0.0
    for k, a in enumerate(range(0, n_time, chunk)):
        b = min(a + chunk, n_time)
        p = decode_posterior(np.asarray(posterior[a:b].compute(scheduler="synchronous")))
        x = np.asarray(position[a:b].compute(scheduler="synchronous"))
        best = centers[np.argmax(p, axis=1)]
        h = entropy_nats(p)
        err = np.abs(best - x)
        for name, values in (("map_position", best), ("entropy", h), ("error", err)):
            outs[name].write_chunk((k,), values)
        ok = err <= cfg.within_cm
        hits_all += int(ok.sum())
        hits += int(ok[max(held_out - a, 0) :].sum())
        sum_err, sum_sq, sum_h = sum_err + err.sum(), sum_sq + (err**2).sum(), sum_h + h.sum()
    n_eval = n_time - held_out
    metrics = {
        "frac_within": hits / n_eval if n_eval else float("nan"),
        "frac_within_all": hits_all / n_time,
        "mean_error_cm": float(sum_err / n_time),
        "rmse_cm": float(np.sqrt(sum_sq / n_time)),
        "mean_entropy_nats": float(sum_h / n_time),
        "n_held_out": n_eval,
    }
    return {**outs, "metrics": metrics}
