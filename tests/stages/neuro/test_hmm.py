"""Forward filter and smoother kernels against brute-force enumeration over every path."""

from __future__ import annotations

import numpy as np
import pytest

from physflow.stages.neuro import hmm
from physflow.stages.neuro.hmm import PosteriorUnderflowError, chunk_bounds

from .reference import brute_force, random_hmm

BACKENDS = ["numpy", "jax"]


def kernels(backend: str):
    if backend == "jax":
        pytest.importorskip("jax", reason="jax is not installed (pip install 'physflow[jax]')")
        from physflow.stages.neuro import hmm_jax

        return hmm_jax.forward_jax, hmm_jax.backward_jax
    return hmm.forward_numpy, hmm.backward_numpy


def run_chunked(backend, p0, A, ll, chunk, dtype="float64"):
    """Filter then smooth in chunks of ``chunk`` bins, carrying state across boundaries."""
    forward, backward = kernels(backend)
    pred, logz, filtered = p0, 0.0, []
    bounds = chunk_bounds(len(ll), chunk)
    for a, b in bounds:
        f, pred, lz = forward(ll[a:b], A, pred, dtype, keep=True, t0=a)
        filtered.append(f)
        logz += lz
    smoothed, msg = [None] * len(bounds), None
    for k in range(len(bounds) - 1, -1, -1):
        a, b = bounds[k]
        smoothed[k], msg = backward(ll[a:b], A, filtered[k], msg, dtype, t0=a)
    return np.concatenate(filtered), np.concatenate(smoothed), logz


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_hmm_equals_path_enumeration(backend, seed):
    """S=3, T=7 (2,187 paths): filter, smoother and evidence to 1e-12 in float64."""
    p0, A, ll = random_hmm(np.random.default_rng(seed), 3, 7)
    want_f, want_s, want_logz = brute_force(p0, A, ll)
    for chunk in (7, 3, 1):
        f, s, logz = run_chunked(backend, p0, A, ll, chunk)
        np.testing.assert_allclose(f, want_f, rtol=0, atol=1e-12)
        np.testing.assert_allclose(s, want_s, rtol=0, atol=1e-12)
        assert logz == pytest.approx(want_logz, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_underflowing_steps_are_redone_in_log_space(backend):
    """Observations 800 nats apart under a prediction with an exact zero: the scaled product
    underflows to 0 and the kernels fall back to log space; enumeration (in log space) agrees."""
    rng = np.random.default_rng(5)
    _, A, _ = random_hmm(rng, 3, 7)
    p0 = np.array([0.0, 0.5, 0.5])
    ll = rng.normal(0.0, 1.0, size=(7, 3))
    ll[0] = [0.0, -800.0, -801.0]
    ll[3] = [-900.0, 0.0, -1000.0]
    want_f, want_s, want_logz = brute_force(p0, A, ll)
    f, s, logz = run_chunked(backend, p0, A, ll, 2)
    # log weights of magnitude ~1e3 carry ~1e-13 absolute rounding on both sides
    np.testing.assert_allclose(f, want_f, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s, want_s, rtol=0, atol=1e-12)
    assert logz == pytest.approx(want_logz, rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_posterior_rows_whose_product_underflows(backend):
    """f_0 = [1, 1e-300] and beta_0 = [1e-300, 1]: every product f * beta is ~1e-300, below the
    normalisation floor, so the row is formed in log space; the answer is [1/2, 1/2]."""
    A = np.array([[1.0 - 1e-16, 1e-300], [1e-300, 1.0 - 1e-16]])
    A /= A.sum(axis=1, keepdims=True)
    p0 = np.array([0.5, 0.5])
    ll = np.array([[0.0, -300 * np.log(10.0)], [-1000.0, 0.0]])
    want_f, want_s, want_logz = brute_force(p0, A, ll)
    np.testing.assert_allclose(want_s[0], [0.5, 0.5], rtol=1e-12)
    f, s, logz = run_chunked(backend, p0, A, ll, 2)
    np.testing.assert_allclose(f, want_f, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s, want_s, rtol=0, atol=1e-12)
    assert logz == pytest.approx(want_logz, rel=1e-13)


def test_impossible_observation_is_a_clear_error():
    A = np.full((3, 3), 1 / 3)
    ll = np.zeros((4, 3))
    ll[2] = -np.inf
    with pytest.raises(PosteriorUnderflowError, match=r"time bin 2 has no finite entry"):
        hmm.forward_numpy(ll, A, np.full(3, 1 / 3))
    p0 = np.array([1.0, 0.0, 0.0])
    ll = np.array([[0.0, 0.0, 0.0], [-np.inf, 0.0, 0.0]])
    with pytest.raises(PosteriorUnderflowError, match="time bin 1: every state has zero"):
        hmm.forward_numpy(ll, np.eye(3), p0)


def banded_model(seed: int, s: int, n: int):
    """A random-walk transition and peaked log-likelihoods, like the decoder's."""
    rng = np.random.default_rng(seed)
    d = np.arange(s)[:, None] - np.arange(s)[None, :]
    A = np.exp(-0.5 * (d / 1.5) ** 2)
    A /= A.sum(axis=1, keepdims=True)
    centre = np.cumsum(rng.integers(-1, 2, size=n)) % s
    ll = -0.5 * ((np.arange(s)[None, :] - centre[:, None]) / 4.0) ** 2
    ll += rng.normal(0.0, 2.0, size=(n, s))
    return np.full(s, 1.0 / s), A, ll


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_equals_unchunked(backend):
    """float64: chunk sizes that divide T and that do not agree to 1e-12 (the carries are exact);
    float32 arithmetic: to 2e-5 absolute (single-precision rounding, ~1e-7 per step, spread by
    the recursion's mixing; measured ~1e-6)."""
    p0, A, ll = banded_model(3, 40, 1000)
    f1, s1, z1 = run_chunked(backend, p0, A, ll, 1000)
    for chunk in (250, 333, 999, 64):
        f, s, z = run_chunked(backend, p0, A, ll, chunk)
        np.testing.assert_allclose(f, f1, rtol=0, atol=1e-12)
        np.testing.assert_allclose(s, s1, rtol=0, atol=1e-12)
        assert z == pytest.approx(z1, rel=1e-12)
        f32, s32, z32 = run_chunked(backend, p0, A, ll, chunk, "float32")
        assert f32.dtype == np.float32
        np.testing.assert_allclose(f32, f1, rtol=0, atol=2e-5)
        np.testing.assert_allclose(s32, s1, rtol=0, atol=2e-5)
        assert z32 == pytest.approx(z1, rel=1e-5)


def test_numpy_and_jax_backends_agree():
    p0, A, ll = banded_model(4, 40, 700)  # S = 40 like the other jax tests: one compilation
    got = {b: run_chunked(b, p0, A, ll, 300) for b in BACKENDS}
    (fn, sn, zn), (fj, sj, zj) = got["numpy"], got["jax"]
    np.testing.assert_allclose(fj, fn, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sj, sn, rtol=0, atol=1e-12)
    assert zj == pytest.approx(zn, rel=1e-13)
    f32 = run_chunked("jax", p0, A, ll, 300, "float32")
    np.testing.assert_allclose(f32[1], sn, rtol=0, atol=2e-5)


def test_filter_without_keeping_the_posterior_carries_the_same_state():
    p0, A, ll = banded_model(6, 30, 200)
    f, pred, z = hmm.forward_numpy(ll, A, p0)
    none, pred2, z2 = hmm.forward_numpy(ll, A, p0, keep=False)
    assert none is None and z2 == z
    np.testing.assert_array_equal(pred2, pred)
    np.testing.assert_allclose(pred, f[-1] @ A, rtol=0, atol=1e-15)
