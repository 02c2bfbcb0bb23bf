"""``neuro.encode``: place fields estimated from a training segment of the recording.

The first ``n_train`` bins are histogrammed on the decoding grid (``n_bins`` equal bins over
the track): occupancy time per bin and spike counts per (bin, cell). Both are smoothed with the
same Gaussian kernel of width ``bandwidth_cm`` and divided (a Nadaraya-Watson estimate of the
rate), then floored at ``min_rate_hz`` so that no position is impossible for a cell. Inputs are
read lazily, chunk by chunk: memory is O(chunk), whatever the recording length.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_range


class EncodeConfig(pf.Config):
    n_bins: Annotated[int, msgspec.Meta(ge=2)] = 100
    #: Bins from the start of the recording used for fitting (the rest is held out).
    n_train: Annotated[int, msgspec.Meta(gt=0)] = 30_000
    bandwidth_cm: Annotated[float, msgspec.Meta(gt=0.0)] = 4.0
    min_rate_hz: Annotated[float, msgspec.Meta(gt=0.0)] = 0.01

    def __post_init__(self) -> None:
        check_range(self, "n_bins", ge=2)
        check_range(self, "n_train", gt=0)
        check_range(self, "bandwidth_cm", gt=0.0)
        check_range(self, "min_rate_hz", gt=0.0)


class Encoding(msgspec.Struct, frozen=True):
    """The decoding grid and the fitted rates."""

    rates_hz: np.ndarray  # (n_cells, n_bins)
    edges_cm: np.ndarray  # (n_bins + 1,)
    dt_s: float
    n_train: int

    @property
    def centers_cm(self) -> np.ndarray:
        return 0.5 * (self.edges_cm[:-1] + self.edges_cm[1:])


def grid_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each position (the right edge belongs to the last bin)."""
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)


def smoothed_rates(
    occupancy_s: np.ndarray, counts: np.ndarray, centers: np.ndarray, cfg: EncodeConfig
) -> np.ndarray:
    """Nadaraya-Watson rate estimate (n_cells, n_bins) from binned occupancy and counts."""
    d = (centers[:, None] - centers[None, :]) / cfg.bandwidth_cm
    kernel = np.exp(-0.5 * d * d)
    occ = kernel @ occupancy_s  # (S,)
    num = kernel @ counts  # (S, N)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = num / occ[:, None]
    rate = np.where(occ[:, None] > 0, rate, 0.0)
    return np.maximum(rate, cfg.min_rate_hz).T.copy()


@pf.stage(version="1", lazy=["position", "spikes"], deps=[Encoding, grid_index, smoothed_rates])
def encode(cfg: EncodeConfig, position: Any, spikes: Any, track: Any) -> Encoding:
    """Fit place fields on bins [0, n_train) of the recording (``track``: a TrackInfo)."""
    n_time = position.shape[0]
    if spikes.shape[0] != n_time:
        raise ValueError(
            f"encode: position has {n_time} bins but spikes has {spikes.shape[0]}; both inputs "
            "must come from the same simulate node"
        )
    if cfg.n_train > n_time:
        raise ValueError(
            f"EncodeConfig.n_train = {cfg.n_train} exceeds the recording ({n_time} bins); "
            f"set n_train <= {n_time}"
        )
    edges = np.linspace(0.0, track.track_cm, cfg.n_bins + 1)
    occupancy = np.zeros(cfg.n_bins)
    counts = np.zeros((cfg.n_bins, spikes.shape[1]))
    step = int(position.chunks[0][0])
    for a in range(0, cfg.n_train, step):
        b = min(a + step, cfg.n_train)
        idx = grid_index(np.asarray(position[a:b].compute(scheduler="synchronous")), edges)
        k = np.asarray(spikes[a:b].compute(scheduler="synchronous"), dtype=np.float64)
        occupancy += np.bincount(idx, minlength=cfg.n_bins) * track.dt_s
        for n in range(k.shape[1]):
            counts[:, n] += np.bincount(idx, weights=k[:, n], minlength=cfg.n_bins)
    rates = smoothed_rates(occupancy, counts, 0.5 * (edges[:-1] + edges[1:]), cfg)
    return Encoding(rates_hz=rates, edges_cm=edges, dt_s=track.dt_s, n_train=cfg.n_train)
