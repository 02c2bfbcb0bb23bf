"""``neuro.transition``: the random-walk transition matrix on the decoding grid.

The simulated walk moves by a Gaussian step of standard deviation sigma and reflects at the
track's ends. Coarse-grained on the grid (position uniform within its bin -- the stationary
law of a reflected walk is uniform), the exact probability of moving from bin i to bin j is

    A[i, j] = (1/h) * integral over x in bin i of P(reflect(x + step) in bin j) dx,

which has a closed form through the antiderivative of the normal CDF,
``F(u) = sigma * (z Phi(z) + phi(z))`` with ``z = u / sigma`` (evaluated so that far entries
keep their relative precision instead of drowning in rounding noise). Reflection adds the mirror
images of bin j about both ends; rows are renormalised (only double reflections, negligible
for sigma << track length, are dropped).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_range


class TransitionConfig(pf.Config):
    #: Standard deviation of one step of the random walk (match simulate.step_std_cm).
    step_std_cm: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0

    def __post_init__(self) -> None:
        check_range(self, "step_std_cm", gt=0.0)


def _tail(u: np.ndarray, sigma: float) -> np.ndarray:
    """``F(-|u|)`` where ``F`` is the antiderivative of ``Phi(u / sigma)``: the part that decays
    like ``phi``, computed through the Mills ratio (no cancellation far from the bin)."""
    from scipy.special import erfcx

    y = np.abs(u) / sigma
    phi = np.exp(-0.5 * y * y) / math.sqrt(2.0 * math.pi)
    mills = math.sqrt(math.pi / 2.0) * erfcx(y / math.sqrt(2.0))
    return sigma * phi * np.maximum(1.0 - y * mills, 0.0)


def _mass(edges: np.ndarray, lo: np.ndarray, hi: np.ndarray, sigma: float) -> np.ndarray:
    """(S, S): P(x + step in [lo_j, hi_j]) averaged over x uniform in bin i.

    A second difference of ``F(u) = max(u, 0) + F(-|u|)`` (``F(u) = u + F(-u)``); when all four
    arguments have one sign the linear parts cancel exactly and only tails are summed."""
    a, b = edges[:-1, None], edges[1:, None]
    args = (hi[None, :] - a, hi[None, :] - b, lo[None, :] - a, lo[None, :] - b)
    signs = (1.0, -1.0, -1.0, 1.0)
    tails = sum(s * _tail(u, sigma) for s, u in zip(signs, args))
    linear = sum(s * np.maximum(u, 0.0) for s, u in zip(signs, args))
    one_sided = (args[3] >= 0) | (args[0] <= 0)  # bin j wholly right, or wholly left, of bin i
    return (np.where(one_sided, 0.0, linear) + tails) / (b - a)


def random_walk_matrix(edges: np.ndarray, sigma: float) -> np.ndarray:
    """Row-stochastic (S, S) transition matrix of a reflected Gaussian walk on the grid."""
    lo, hi, length = edges[:-1], edges[1:], edges[-1] - edges[0]
    lo, hi = lo - edges[0], hi - edges[0]
    grid = edges - edges[0]
    A = _mass(grid, lo, hi, sigma)
    A += _mass(grid, -hi, -lo, sigma)  # reflected at 0
    A += _mass(grid, 2 * length - hi, 2 * length - lo, sigma)  # reflected at the far end
    A = np.maximum(A, 0.0)
    return A / A.sum(axis=1, keepdims=True)


@pf.stage(version="1", deps=[_tail, _mass, random_walk_matrix])
def transition(cfg: TransitionConfig, encoding: Any) -> np.ndarray:
    """The (S, S) row-stochastic matrix ``A[i, j] = P(next bin j | bin i)`` on the grid of
    ``encoding`` (an :class:`~.encode.Encoding`)."""
    return random_walk_matrix(np.asarray(encoding.edges_cm, dtype=np.float64), cfg.step_std_cm)
