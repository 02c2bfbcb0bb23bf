"""``neuro.simulate``: an animal on a 1-D track and the place cells that fire as it moves.

Position is a Gaussian random walk sampled at 1/dt (500 Hz by default) with reflecting ends,
built as the fold of a free walk into [0, L] (a reflected symmetric walk has the same law).
Cell n fires as an inhomogeneous Poisson process of rate
``baseline + peak * exp(-(x - c_n)^2 / (2 sigma^2))``; counts per bin are Poisson(rate * dt).

Randomness is drawn in fixed blocks of ``GEN_BLOCK`` bins, each from its own generator
(SeedSequence of the stage's seed and the block index), so a longer recording with the same
seed starts with exactly the same bins whatever ``n_time`` and ``chunk_size`` are. Outputs are
streamed chunk by chunk: memory is O(chunk_size * n_cells).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_range

#: Bins per random block (part of the random stream: changing it changes every simulation).
GEN_BLOCK = 4096


class SimulateConfig(pf.Config):
    n_time: Annotated[int, msgspec.Meta(gt=0)] = 60_000
    dt_s: Annotated[float, msgspec.Meta(gt=0.0)] = 0.002
    track_cm: Annotated[float, msgspec.Meta(gt=0.0)] = 200.0
    #: Standard deviation of one step of the position random walk.
    step_std_cm: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0
    n_cells: Annotated[int, msgspec.Meta(gt=0)] = 50
    field_sigma_cm: Annotated[float, msgspec.Meta(gt=0.0)] = 10.0
    peak_rate_hz: Annotated[float, msgspec.Meta(ge=0.0)] = 25.0
    baseline_rate_hz: Annotated[float, msgspec.Meta(ge=0.0)] = 0.5
    chunk_size: Annotated[int, msgspec.Meta(gt=0)] = 25_000

    def __post_init__(self) -> None:
        for name in ("n_time", "dt_s", "track_cm", "step_std_cm", "n_cells", "field_sigma_cm"):
            check_range(self, name, gt=0)
        check_range(self, "chunk_size", gt=0)
        check_range(self, "peak_rate_hz", ge=0.0)
        check_range(self, "baseline_rate_hz", ge=0.0)
        if (self.peak_rate_hz + self.baseline_rate_hz) * self.dt_s > 20.0:
            raise ValueError(
                "SimulateConfig: (peak_rate_hz + baseline_rate_hz) * dt_s must be <= 20 spikes "
                "per bin (counts are stored as uint8); lower the rates or dt_s"
            )


class TrackInfo(msgspec.Struct, frozen=True):
    """What the simulation knew: sampling, track and the true place fields (for checks)."""

    dt_s: float
    track_cm: float
    step_std_cm: float
    centers_cm: np.ndarray
    field_sigma_cm: float
    peak_rate_hz: float
    baseline_rate_hz: float


def rates_hz(info: TrackInfo, x_cm: np.ndarray) -> np.ndarray:
    """True firing rates (len(x), n_cells) at positions ``x_cm``."""
    d = np.asarray(x_cm, dtype=np.float64)[:, None] - info.centers_cm[None, :]
    return info.baseline_rate_hz + info.peak_rate_hz * np.exp(-0.5 * (d / info.field_sigma_cm) ** 2)


def fold(z: np.ndarray, length: float) -> np.ndarray:
    """Reflect a free walk into [0, length] (triangle wave of period 2 * length)."""
    m = np.mod(z, 2.0 * length)
    return np.where(m > length, 2.0 * length - m, m)


def blocks(info: TrackInfo, entropy: int, n_time: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(position, spikes) of consecutive random blocks covering ``n_time`` bins."""
    start = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(0,)))
    z = start.uniform(0.0, info.track_cm)
    for b, a in enumerate(range(0, n_time, GEN_BLOCK)):
        n = min(GEN_BLOCK, n_time - a)
        walk = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(1, b)))
        fire = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(2, b)))
        steps = walk.standard_normal(n) * info.step_std_cm
        if a == 0:
            steps[0] = 0.0  # the first bin is the start position
        path = z + np.cumsum(steps)
        z = path[-1]
        x = fold(path, info.track_cm)
        counts = fire.poisson(rates_hz(info, x) * info.dt_s)
        if counts.max(initial=0) > 255:
            raise OverflowError("a spike count exceeds 255 per bin; lower the rates or dt_s")
        yield x, counts.astype(np.uint8)


def rechunk(parts: Iterator[tuple[np.ndarray, ...]], size: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Regroup consecutive row blocks into blocks of ``size`` rows (the last may be shorter)."""
    pending: list[tuple[np.ndarray, ...]] = []
    have = 0
    for part in parts:
        pending.append(part)
        have += len(part[0])
        while have >= size:
            joined = tuple(np.concatenate(cols) for cols in zip(*pending))
            yield tuple(c[:size] for c in joined)
            rest = tuple(c[size:] for c in joined)
            have -= size
            pending = [rest] if have else []
    if have:
        yield tuple(np.concatenate(cols) for cols in zip(*pending))


@pf.stage(
    version="1",
    outputs=["position", "spikes", "track"],
    deps=[TrackInfo, rates_hz, fold, blocks, rechunk, GEN_BLOCK],
)
def simulate(
    cfg: SimulateConfig, *, rng: np.random.Generator, ctx: pf.StageContext
) -> dict[str, Any]:
    """Position (n_time,) in cm, spike counts (n_time, n_cells) uint8, and the track's truth."""
    entropy = int(rng.integers(0, 2**63))
    centers = np.sort(rng.uniform(0.0, cfg.track_cm, size=cfg.n_cells))
    info = TrackInfo(
        dt_s=cfg.dt_s,
        track_cm=cfg.track_cm,
        step_std_cm=cfg.step_std_cm,
        centers_cm=centers,
        field_sigma_cm=cfg.field_sigma_cm,
        peak_rate_hz=cfg.peak_rate_hz,
        baseline_rate_hz=cfg.baseline_rate_hz,
    )
    chunk = min(cfg.chunk_size, cfg.n_time)
    pos = ctx.output_array("position", (cfg.n_time,), np.float64, chunks=(chunk,))
    spk = ctx.output_array(
        "spikes", (cfg.n_time, cfg.n_cells), np.uint8, chunks=(chunk, cfg.n_cells)
    )
    for k, (x, counts) in enumerate(rechunk(blocks(info, entropy, cfg.n_time), chunk)):
        pos.write_chunk((k,), x)
        spk.write_chunk((k, 0), counts)
    return {"position": pos, "spikes": spk, "track": info}
