"""Cell-averaging CFAR on power spectrograms, then connected detections and NMS.

For a cell x under test and N training cells of exponential noise with mean m, the threshold
``alpha * mean(training)`` with ``alpha = N (Pfa^(-1/N) - 1)`` gives P(x > threshold) = Pfa
exactly (the training sum is Gamma(N, m)). Training cells sit on both sides of the cell along
one axis, beyond ``guard`` cells, every ``stride``-th cell; cells near the frame edges use the
cells that exist, with their own N and alpha, so every cell keeps the design Pfa.

Why one axis at a time: a wide burst fills a frequency window (it would mask itself) and a tone
fills a time window. ``mode: both`` runs a time CFAR and a frequency CFAR at Pfa/2 each and
ORs them (union bound: the combined false-alarm rate is at most Pfa; its exact value is
tested). ``stride`` skips cells correlated with their neighbours: Hann frames overlapping by
half are correlated at lag 1 (|rho|^2 = 1/9) and Hann bins at lags 1 and 2, so the defaults
(time stride 2, frequency stride 3, guards >= 2) keep training cells independent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .xp import NumpyBackend


def alpha(n_train: Any, pfa: float) -> Any:
    """CA-CFAR threshold factor N (Pfa^(-1/N) - 1) (elementwise; inf where N = 0)."""
    n = np.asarray(n_train, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = n * (np.power(pfa, -1.0 / n) - 1.0)
    return np.where(n > 0, out, np.inf)


def window_sums(be: NumpyBackend, x: Any, guard: int, train: int, stride: int) -> Any:
    """Sum over each cell's training cells along the last axis of a 2-D array (zeros beyond
    the edges): offsets +-(guard + 1 + stride * i), i = 0..train-1, by strided cumulative sums
    (O(cells), any backend)."""
    rows, length = x.shape
    a0 = guard + 1
    pad_left = a0 + stride * train
    pad_right = a0 + stride * (train - 1)
    total = pad_left + length + pad_right
    pad_right += (-total) % stride
    total = pad_left + length + pad_right
    padded = be.concat(
        [be.zeros((rows, pad_left), x.dtype), x, be.zeros((rows, pad_right), x.dtype)], axis=1
    )
    csum = be.cumsum(padded.reshape(rows, total // stride, stride), axis=1).reshape(rows, total)
    right_hi = pad_left + a0 + stride * (train - 1)
    right_lo = pad_left + a0 - stride
    left_hi = pad_left - a0
    right = csum[:, right_hi : right_hi + length] - csum[:, right_lo : right_lo + length]
    left = csum[:, left_hi : left_hi + length] - csum[:, 0:length]
    return left + right


def cfar_last_axis(
    be: NumpyBackend,
    power: Any,
    *,
    guard: int,
    train: int,
    stride: int,
    pfa: float,
    min_train: int,
) -> Any:
    """Boolean hits of a CA-CFAR along the last axis of a 2-D power array."""
    x = be.asarray(power, dtype=np.float64)
    length = x.shape[1]
    sums = window_sums(be, x, guard, train, stride)
    counts = to_numpy_counts(length, guard, train, stride)
    factor = np.where(counts >= min_train, alpha(counts, pfa) / np.maximum(counts, 1), np.inf)
    threshold = sums * be.asarray(factor[None, :], dtype=np.float64)
    return x > threshold


def to_numpy_counts(length: int, guard: int, train: int, stride: int) -> np.ndarray:
    """Number of training cells inside the array for each position (fewer near the edges)."""
    ones = np.ones((1, length), dtype=np.float64)
    return np.rint(window_sums(NumpyBackend(), ones, guard, train, stride)[0])


def ca_cfar(
    be: NumpyBackend,
    power: Any,
    *,
    mode: str,
    pfa: float,
    time: tuple[int, int, int],
    freq: tuple[int, int, int],
    min_train: int,
) -> Any:
    """Hits of a 2-D (time, freq) power array. ``time``/``freq`` are (guard, train, stride)."""
    if mode not in ("time", "freq", "both"):
        raise ValueError(f"CFAR mode {mode!r} is not valid; use 'time', 'freq' or 'both'")
    per_axis = pfa / 2 if mode == "both" else pfa
    hits = None
    if mode in ("freq", "both"):
        g, t, s = freq
        hits = cfar_last_axis(
            be, power, guard=g, train=t, stride=s, pfa=per_axis, min_train=min_train
        )
    if mode in ("time", "both"):
        g, t, s = time
        along_time = cfar_last_axis(
            be, be.asarray(power).T, guard=g, train=t, stride=s, pfa=per_axis, min_train=min_train
        ).T
        hits = along_time if hits is None else hits | along_time
    return hits


def components(
    hits: np.ndarray, power: np.ndarray, merge: tuple[int, int], min_cells: int
) -> list[tuple[int, int, int, int, float]]:
    """Groups of hits joined after dilating by ``merge`` = (time, freq) half-widths:
    [(col0, col1, bin0, bin1, peak power)] with inclusive cell bounds, groups of at least
    ``min_cells`` hits only."""
    from scipy import ndimage

    joined = hits.view(np.uint8)
    for axis, half in enumerate(merge):  # a rectangular dilation, as two separable passes
        if half:
            joined = ndimage.maximum_filter1d(joined, 2 * half + 1, axis=axis, mode="constant")
    labels, n = ndimage.label(joined, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    rows, cols = np.nonzero(hits)  # hits are sparse: group them by label from their coordinates
    lab = labels[rows, cols]
    counts = np.bincount(lab, minlength=n + 1)
    big = np.iinfo(np.int64).max
    lo_r, hi_r = np.full(n + 1, big), np.full(n + 1, -1)
    lo_c, hi_c = np.full(n + 1, big), np.full(n + 1, -1)
    peak = np.full(n + 1, -np.inf)
    np.minimum.at(lo_r, lab, rows)
    np.maximum.at(hi_r, lab, rows)
    np.minimum.at(lo_c, lab, cols)
    np.maximum.at(hi_c, lab, cols)
    np.maximum.at(peak, lab, np.asarray(power)[rows, cols].astype(np.float64))
    found = [
        (int(lo_r[i]), int(hi_r[i]), int(lo_c[i]), int(hi_c[i]), float(peak[i]))
        for i in range(1, n + 1)
        if counts[i] >= min_cells
    ]
    return found
