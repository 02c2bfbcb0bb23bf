"""The generative model: random walk, place cells, fitted fields, transition, likelihood."""

from __future__ import annotations

import numpy as np
import pytest

import physflow as pf
from physflow.stages.neuro import EncodeConfig, SimulateConfig, encode, simulate
from physflow.stages.neuro.simulate import rates_hz
from physflow.stages.neuro.transition import random_walk_matrix

from .helpers import run, small_pipeline

stats = pytest.importorskip("scipy.stats")


def _simulate(store, **fields):
    p = pf.Pipeline("sim", seed=3)
    p.add("simulate", simulate, SimulateConfig(**fields))
    return run(p, store)


def test_transition_matrix_equals_numerical_integration():
    """A[i, j] = mean over x in bin i of P(reflect(x + N(0, s^2)) in bin j), by scipy.quad;
    entries keep their relative precision down to 1e-104 (no cancellation noise)."""
    from scipy.integrate import quad

    edges, s, length = np.linspace(0.0, 100.0, 51), 1.3, 100.0
    A = random_walk_matrix(edges, s)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=0, atol=1e-14)

    def exact(i, j):
        lo, hi = edges[j], edges[j + 1]

        def mass(x):
            free = stats.norm.sf((lo - x) / s) - stats.norm.sf((hi - x) / s)
            left = stats.norm.cdf((-lo - x) / s) - stats.norm.cdf((-hi - x) / s)
            right = stats.norm.sf((2 * length - hi - x) / s) - stats.norm.sf(
                (2 * length - lo - x) / s
            )
            return free + left + right

        a, b = edges[i], edges[i + 1]
        return quad(mass, a, b, epsabs=0, epsrel=1e-13, limit=200)[0] / (b - a)

    for i, j in [(25, 25), (25, 26), (25, 28), (25, 31), (25, 40), (0, 0), (0, 2), (49, 47)]:
        assert A[i, j] == pytest.approx(exact(i, j), rel=1e-9), (i, j)


def test_simulated_walk_moves_between_bins_as_the_transition_matrix_says(store):
    """Empirical bin-to-bin moves of the simulated walk vs A (the stationary law of a reflected
    walk is uniform, so x is uniform within its bin): binomial 99.9% intervals."""
    res = _simulate(store, n_time=200_000, n_cells=1, track_cm=40.0, step_std_cm=1.5)
    x = np.asarray(res["simulate.position"])
    assert x.min() >= 0.0 and x.max() <= 40.0
    edges = np.linspace(0.0, 40.0, 21)
    A = random_walk_matrix(edges, 1.5)
    b = np.clip((x / 2.0).astype(int), 0, 19)
    for d in (0, 1, 2):
        moved = (b[1:] - b[:-1]) == d
        p = np.mean([A[i, i + d] for i in b[:-1] if i + d < 20])
        n = int(np.sum(b[:-1] + d < 20))
        lo, hi = stats.binom.ppf([0.0005, 0.9995], n, p)
        assert lo <= moved.sum() <= hi, (d, moved.sum(), lo, hi)


def test_spike_counts_are_poisson_at_the_true_rates(store):
    res = _simulate(store, n_time=50_000, n_cells=8)
    info, x = res["simulate.track"], np.asarray(res["simulate.position"])
    k = np.asarray(res["simulate.spikes"])
    assert k.dtype == np.uint8 and k.shape == (50_000, 8)
    mu = rates_hz(info, x) * info.dt_s
    total, expected = k.sum(axis=0), mu.sum(axis=0)
    z = (total - expected) / np.sqrt(expected)
    assert np.all(np.abs(z) < 4.5), z  # each cell's total count: Poisson, |z| < 4.5
    resid = (k - mu) ** 2 - mu  # E = 0 for Poisson counts (variance = mean)
    assert abs(resid.sum()) < 5 * np.sqrt((2 * mu**2 + mu).sum())


def test_longer_recordings_and_other_chunkings_share_the_same_prefix(store):
    short = _simulate(store, n_time=9000, chunk_size=2500)
    long = _simulate(store, n_time=20000, chunk_size=3000)
    np.testing.assert_array_equal(
        np.asarray(long["simulate.position"])[:9000], short["simulate.position"]
    )
    np.testing.assert_array_equal(
        np.asarray(long["simulate.spikes"])[:9000], short["simulate.spikes"]
    )
    np.testing.assert_array_equal(
        long["simulate.track"].centers_cm, short["simulate.track"].centers_cm
    )


def test_encode_recovers_the_true_place_fields(store):
    """Fitted rates vs the truth smoothed by the same kernel, where the animal spent time."""
    p = pf.Pipeline("fields", seed=7)
    p.add("simulate", simulate, SimulateConfig(n_time=40_000, n_cells=30, track_cm=100.0))
    cfg = EncodeConfig(n_bins=40, n_train=40_000, bandwidth_cm=3.0)
    p.add("encode", encode, cfg, **{k: f"simulate.{k}" for k in ("position", "spikes", "track")})
    res = run(p, store)
    enc, info = res["encode"], res["simulate.track"]
    centers = 0.5 * (enc.edges_cm[:-1] + enc.edges_cm[1:])
    truth = rates_hz(info, centers).T  # (N, S)
    fitted = enc.rates_hz
    peak_ok = np.abs(centers[fitted.argmax(axis=1)] - centers[truth.argmax(axis=1)]) <= 5.0
    assert peak_ok.mean() >= 0.9, centers[fitted.argmax(axis=1)] - centers[truth.argmax(axis=1)]
    rel = np.abs(fitted.max(axis=1) - truth.max(axis=1)) / truth.max(axis=1)
    assert np.median(rel) < 0.2, rel


def test_likelihood_is_the_poisson_log_pmf(store):
    res = run(small_pipeline(3000, 1000, n_train=3000), store)
    enc = res["encode"]
    k = np.asarray(res["simulate.spikes"])[:500]
    lam = enc.rates_hz * enc.dt_s  # (N, S)
    want = stats.poisson.logpmf(k[:, :, None], lam[None, :, :]).sum(axis=1)
    np.testing.assert_allclose(np.asarray(res["likelihood"])[:500], want, rtol=1e-12, atol=1e-9)
