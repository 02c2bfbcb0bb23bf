"""Chunked forward filter and backward smoother of a discrete HMM (numpy kernels).

Numerics. Probabilities are normalised at every step; the emission ``exp(ll - max(ll))`` is
formed per row, so no row overflows and the largest factor is 1. When a step's mass still
underflows (a very surprising observation under a sharply peaked prediction), that step is
redone in log space from the exact log-likelihood, so the result equals the log-space
recursion. The log marginal likelihood is accumulated as ``sum(log c_t + max(ll_t))``.

Conventions (T time bins, S states, A row-stochastic, ``A[i, j] = P(x_{t+1}=j | x_t=i)``):

- forward: ``f_t = normalise(pred_t * lik_t)``, ``pred_{t+1} = f_t @ A``; the carry between
  chunks is ``pred`` at the chunk's first bin (with ``pred_0`` the initial distribution).
- backward (two-filter form): ``beta_{T-1} = 1``, ``beta_t = A @ m_{t+1}`` with the message
  ``m_t = normalise(lik_t * beta_t)``; posterior ``g_t = normalise(f_t * beta_t)``. The carry
  from a later chunk is the message at its first bin; ``beta`` never depends on ``f``, so a
  stored causal posterior can be used as is, and only one matrix-vector product per bin is
  sequential (the posterior rows are formed afterwards, vectorised).
"""

from __future__ import annotations

import math

import numpy as np


class PosteriorUnderflowError(FloatingPointError):
    """No state has non-zero probability even in log space (an impossible observation)."""


def floor_of(dtype: np.dtype) -> float:
    """Below this mass a normalisation loses precision: redo the step in log space."""
    info = np.finfo(dtype)
    return float(info.tiny / info.eps)


#: Rows whose emissions are formed at a time (memory: a few (ROWS, S) arrays, not (C, S)).
ROWS = 512


def emission_scale(ll: np.ndarray, dtype: np.dtype, t0: int = 0) -> tuple[np.ndarray, ...]:
    """(ll - max, lik = exp(ll - max), max) per row, in ``dtype``; impossible rows are an error."""
    ll = np.asarray(ll, dtype=dtype)
    m = ll.max(axis=1)
    bad = ~np.isfinite(m)
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        raise PosteriorUnderflowError(
            f"log-likelihood of time bin {t0 + t} has no finite entry (max {m[t]}): every "
            "position is impossible or the likelihood is NaN; check the likelihood stage inputs"
        )
    shifted = ll - m[:, None]
    return shifted, np.exp(shifted), m


def _log_normalise(logp: np.ndarray, out: np.ndarray, where: str) -> float:
    """``out = normalise(exp(logp))``; returns ``log(sum(exp(logp)))``."""
    top = logp.max()
    if not np.isfinite(top):
        raise PosteriorUnderflowError(
            f"{where}: every state has zero probability even in log space; the transition "
            "matrix and the likelihood are incompatible (widen transition.step_std_cm)"
        )
    np.exp(logp - top, out=out)
    total = out.sum()
    out *= 1.0 / total
    return float(math.log(total) + top)


def forward_numpy(
    ll: np.ndarray,
    A: np.ndarray,
    pred: np.ndarray,
    dtype: str = "float64",
    keep: bool = True,
    t0: int = 0,
) -> tuple[np.ndarray | None, np.ndarray, float]:
    """Filter one chunk: (filtered (C, S) or None, pred for the next bin, log evidence)."""
    dt = np.dtype(dtype)
    n, s = ll.shape
    A = np.asarray(A, dtype=dt)
    out = np.empty((n, s), dtype=dt) if keep else np.empty((1, s), dtype=dt)
    pred = np.array(pred, dtype=dt)
    floor = floor_of(dt)
    logz = 0.0
    with np.errstate(divide="ignore", under="ignore"):
        for a in range(0, n, ROWS):
            shifted, lik, lmax = emission_scale(ll[a : a + ROWS], dt, t0 + a)
            logz += float(lmax.sum(dtype=np.float64))
            for i in range(len(lik)):
                f = out[a + i] if keep else out[0]
                np.multiply(pred, lik[i], out=f)
                c = f.sum()
                if floor < c < np.inf:
                    f *= 1.0 / c
                    logz += math.log(c)
                else:
                    where = f"time bin {t0 + a + i}"
                    logz += _log_normalise(np.log(pred) + shifted[i], f, where)
                np.dot(f, A, out=pred)
    return (out if keep else None), pred, logz


def combine(filtered: np.ndarray, betas: np.ndarray, floor: float, t0: int = 0) -> np.ndarray:
    """Posterior rows ``normalise(f_t * beta_t)``, vectorised (in ``betas``'s memory); a row
    whose mass underflows is redone in log space."""
    with np.errstate(divide="ignore", under="ignore"):
        sums = np.einsum("ij,ij->i", filtered, betas)
        bad = np.flatnonzero(~((sums > floor) & (sums < np.inf)))
        logs = [np.log(filtered[t]) + np.log(betas[t]) for t in bad]
        post = np.multiply(filtered, betas, out=betas)
        sums[bad] = 1.0
        post *= (1.0 / sums)[:, None]
        for t, logp in zip(bad, logs):
            _log_normalise(logp, post[t], f"time bin {t0 + t}")
    return post


def backward_numpy(
    ll: np.ndarray,
    A: np.ndarray,
    filtered: np.ndarray,
    msg: np.ndarray | None,
    dtype: str = "float64",
    t0: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth one chunk given the message from the next chunk (None: the record ends here).

    Returns the smoothed posterior (C, S) and the message at the chunk's first bin. Only the
    message is normalised inside the loop (``beta = A @ m`` stays O(1)); the posterior rows
    are formed afterwards, vectorised."""
    dt = np.dtype(dtype)
    n, s = ll.shape
    A = np.asarray(A, dtype=dt)
    beta = np.ones(s, dtype=dt) if msg is None else A @ np.asarray(msg, dtype=dt)
    post = np.empty((n, s), dtype=dt)
    m = np.empty(s, dtype=dt)
    floor = floor_of(dt)
    with np.errstate(divide="ignore", under="ignore"):
        for a in reversed(range(0, n, ROWS)):
            shifted, lik, _ = emission_scale(ll[a : a + ROWS], dt, t0 + a)
            betas = post[a : a + len(lik)]  # beta rows first, posterior rows after combine
            for i in range(len(lik) - 1, -1, -1):
                betas[i] = beta
                np.multiply(lik[i], beta, out=m)
                c = m.sum()
                if floor < c < np.inf:
                    m *= 1.0 / c
                else:
                    _log_normalise(np.log(beta) + shifted[i], m, f"time bin {t0 + a + i}")
                if a + i:
                    np.dot(A, m, out=beta)
            f = np.asarray(filtered[a : a + len(lik)], dtype=dt)
            combine(f, betas, floor, t0 + a)
    return post, m


def chunk_bounds(n_time: int, chunk: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n_time)`` in chunks of ``chunk`` bins."""
    return [(a, min(a + chunk, n_time)) for a in range(0, n_time, chunk)]
