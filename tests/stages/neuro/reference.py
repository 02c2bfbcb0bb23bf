"""Independent references for the HMM tests: brute-force enumeration over every path."""

from __future__ import annotations

import itertools

import numpy as np


def logsumexp(x: np.ndarray, axis=None) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis) if axis is not None else out.item()


def path_log_weights(p0: np.ndarray, A: np.ndarray, ll: np.ndarray, n: int):
    """Every path of length ``n`` and log p(path, y_0..y_{n-1})."""
    s = len(p0)
    with np.errstate(divide="ignore"):
        logA, logp0 = np.log(A), np.log(p0)
    paths = np.array(list(itertools.product(range(s), repeat=n)))
    w = logp0[paths[:, 0]] + ll[0, paths[:, 0]]
    for t in range(1, n):
        w = w + logA[paths[:, t - 1], paths[:, t]] + ll[t, paths[:, t]]
    return paths, w


def brute_force(p0: np.ndarray, A: np.ndarray, ll: np.ndarray):
    """(filtered (T, S), smoothed (T, S), log marginal likelihood) by enumeration."""
    n, s = ll.shape
    filtered = np.empty((n, s))
    for t in range(n):
        paths, w = path_log_weights(p0, A, ll, t + 1)
        lw = np.array([logsumexp(w[paths[:, t] == j]) for j in range(s)])
        filtered[t] = np.exp(lw - logsumexp(lw))
    paths, w = path_log_weights(p0, A, ll, n)
    total = logsumexp(w)
    smoothed = np.array(
        [[np.exp(logsumexp(w[paths[:, t] == j]) - total) for j in range(s)] for t in range(n)]
    )
    return filtered, smoothed, total


def random_hmm(rng: np.random.Generator, s: int, n: int, zeros: bool = True):
    A = rng.uniform(0.05, 1.0, size=(s, s))
    if zeros:
        A[0, s - 1] = 0.0  # a forbidden move: log A = -inf must be handled
    A /= A.sum(axis=1, keepdims=True)
    p0 = rng.dirichlet(np.ones(s))
    ll = rng.normal(-2.0, 3.0, size=(n, s))
    return p0, A, ll
