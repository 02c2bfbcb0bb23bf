"""Per-frame latency: stages time each frame they process and return the percentiles as a
``latency`` output (a small dict, so the run manifest lists its entries as node metrics:
``latency.p50_ms``, ``latency.p95_ms``, ``latency.p99_ms``...). ``rf.latency`` compares them
with budgets from its config and reports (never fails) the stages over budget.

Latencies are measurements: they belong to the execution that produced a result. A cached
re-run shows the numbers of the run that computed it (the manifest says which run that was).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np

import physflow as pf

Percentile = Literal["p50", "p95", "p99", "max"]
STAGES = ("stft", "normalize", "cfar")


class FrameTimer:
    """Collects the wall time of each frame (``with timer.frame(): ...``)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    @contextmanager
    def frame(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds.append(time.perf_counter() - t0)

    def summary(self) -> dict[str, float]:
        return latency_summary(self.seconds)


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """n_frames, p50/p95/p99/max/mean in milliseconds (linear-interpolated percentiles)."""
    if not seconds:
        return {"n_frames": 0}
    ms = np.asarray(seconds) * 1e3
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "n_frames": len(ms),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
    }


class LatencyConfig(pf.Config):
    #: Budget per stage input (stft, normalize, cfar) in ms; stages without one are listed only.
    budgets_ms: dict[str, float] = {}
    #: Which statistic is held against the budget.
    percentile: Percentile = "p99"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.budgets_ms) - set(STAGES))
        if unknown:
            raise ValueError(
                f"LatencyConfig.budgets_ms: unknown stage(s) {unknown}; budgets apply to "
                f"{', '.join(STAGES)}"
            )
        if self.percentile not in ("p50", "p95", "p99", "max"):
            raise ValueError(
                f"LatencyConfig.percentile = {self.percentile!r} is not valid; use 'p50', "
                "'p95', 'p99' or 'max'"
            )


@pf.stage(version="1", outputs=["report", "over_budget"])
def latency(
    cfg: LatencyConfig,
    stft: dict | None = None,
    normalize: dict | None = None,
    cfar: dict | None = None,
) -> dict:
    """Budgets against measured per-frame latencies: ``report`` has ``<stage>.<stat>_ms`` for
    every connected stage, plus ``<stage>.budget_ms`` and ``<stage>.over`` (0/1) where a budget
    is set; ``over_budget`` counts the stages over budget (a warning names them)."""
    measured = {"stft": stft, "normalize": normalize, "cfar": cfar}
    report: dict[str, float] = {}
    over: list[str] = []
    stat = f"{cfg.percentile}_ms"
    for name, stats in measured.items():
        if stats is None:
            if name in cfg.budgets_ms:
                raise ValueError(
                    f"rf.latency: a budget is set for '{name}' but input '{name}' is not "
                    f"connected; wire {name}='<node>.latency'"
                )
            continue
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            if key in stats:
                report[f"{name}.{key}"] = float(stats[key])
        budget = cfg.budgets_ms.get(name)
        if budget is not None:
            value = float(stats.get(stat, float("nan")))
            report[f"{name}.budget_ms"] = float(budget)
            report[f"{name}.over"] = float(value > budget)
            if value > budget:
                over.append(f"{name} {cfg.percentile} {value:.2f} ms > {budget:g} ms")
    if over:
        warnings.warn("rf.latency: over budget: " + "; ".join(over), stacklevel=2)
    return {"report": report, "over_budget": len(over)}
