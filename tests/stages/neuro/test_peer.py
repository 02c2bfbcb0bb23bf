"""Against the real peer, non_local_detector 0.6.9 (in the ``neuro`` extra): the same
log-likelihoods and transition matrix through its ``core.filter`` and its own chunked
``core.chunked_filter_smoother``.

non_local_detector 0.6.9 calls ``jnp.clip(u, a_min=eps, a_max=None)`` in ``core._normalize``;
jax 0.10.0 removed the ``a_min``/``a_max`` keywords (jax 0.9.2 is the last that runs it
unmodified, which is what benchmarks/neuro.py installs in its scratch venv). When the installed
jax has dropped them, this test renames the two keywords for the duration of the test
(``jnp.clip(u, min=eps, max=None)``, the same function); every line of the peer's numerics is its
own. Tolerances: the peer floors every probability at 1e-15 before normalising, a floor that a
surprising observation can amplify (measured 6e-10 on the causal posterior), so float64 runs
agree to 1e-8 (causal), 1e-10 (acausal), 1e-12 relative (log evidence). Its default float32
arithmetic agrees to 2e-6 and 1e-6 relative.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from .helpers import run, small_pipeline


@pytest.fixture
def peer(monkeypatch):
    old = np.geterr()
    core = pytest.importorskip(
        "non_local_detector.core",
        reason="non_local_detector is not installed (pip install 'physflow[neuro]')",
    )
    np.seterr(**old)  # importing it calls np.seterr(divide="ignore", invalid="ignore")
    import jax.numpy as jnp

    if "a_min" not in inspect.signature(jnp.clip).parameters:
        real = jnp.clip

        def clip(x, min=None, max=None, *, a_min=None, a_max=None):
            return real(x, min=a_min if min is None else min, max=a_max if max is None else max)

        monkeypatch.setattr(jnp, "clip", clip)
    return core


def _peer_decode(core, ll: np.ndarray, A: np.ndarray, x64: bool):
    import jax

    s = A.shape[0]
    p0 = np.full(s, 1.0 / s)
    with jax.enable_x64(x64):
        (evidence, _), (causal, _) = core.filter(p0, A, ll)
        acausal, _, evidence_chunked, *_ = core.chunked_filter_smoother(
            time=np.arange(len(ll)),
            state_ind=np.zeros(s, dtype=int),
            initial_distribution=p0,
            transition_matrix=A,
            log_likelihood_func=None,
            log_likelihood_args=(),
            n_chunks=4,
            log_likelihoods=ll,
        )
    return np.asarray(causal), np.asarray(acausal), float(evidence), float(evidence_chunked)


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
def test_posteriors_match_non_local_detector(store, peer, x64):
    res = run(small_pipeline(filter_chunk=1750), store)
    ll, A = np.asarray(res["likelihood"]), np.asarray(res["transition"])
    causal, acausal, evidence, evidence_chunked = _peer_decode(peer, ll, A, x64)
    ours_c, ours_a = np.asarray(res["filter.causal"]), np.asarray(res["smoother"])
    logz = res["filter.log_marginal"]
    if x64:
        np.testing.assert_allclose(causal, ours_c, rtol=0, atol=1e-8)
        np.testing.assert_allclose(acausal, ours_a, rtol=0, atol=1e-10)
        assert evidence == pytest.approx(logz, rel=1e-12)
        assert evidence_chunked == pytest.approx(logz, rel=1e-12)
    else:
        assert causal.dtype == np.float32
        np.testing.assert_allclose(causal, ours_c, rtol=0, atol=2e-6)
        np.testing.assert_allclose(acausal, ours_a, rtol=0, atol=2e-6)
        assert evidence == pytest.approx(logz, rel=1e-6)
    assert (causal.argmax(axis=1) == ours_c.argmax(axis=1)).mean() > 0.999
