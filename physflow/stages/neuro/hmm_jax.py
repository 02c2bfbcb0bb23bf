"""The same forward/backward kernels as :mod:`.hmm`, compiled with ``jax.lax.scan``.

jax is imported on first use. A chunk is processed in blocks of ``BLOCK`` bins by one jitted
scan whose shape never changes (the last block is padded and masked), so there is one
compilation per (number of states, precision) whatever the chunk size or record length. Every
block is moved to the device, waited for (``block_until_ready``), copied back into the chunk's
numpy result and its device buffers are deleted, so device memory holds about one block.
``precision: float64`` runs under ``jax.enable_x64(True)`` (a context: the process-wide jax
setting is left alone).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .hmm import emission_scale, floor_of

#: Bins per jitted scan call (dispatch costs ~1% at this size; compile once per S and dtype).
BLOCK = 512
#: Scan steps unrolled per loop iteration (measured ~15% faster than 1 at S = 200 and 1000).
UNROLL = 4

_BUILT: dict[str, Any] = {}


def load_jax() -> tuple[Any, Any]:
    """``(jax, jax.numpy)``, imported without touching numpy's global random state.

    Importing jax (0.10) draws from numpy's global generator. Inside a stage that reads as the
    stage using global randomness (physflow restores the state and warns), so the first import
    keeps the state as it was.
    """
    jnp = sys.modules.get("jax.numpy")
    if jnp is None:
        state = np.random.get_state()
        try:
            import jax.numpy as jnp
        finally:
            np.random.set_state(state)
    return sys.modules["jax"], jnp


def _kernels() -> dict[str, Any]:
    """The jitted scans, built on first use (tracing needs jax, so this is lazy)."""
    if not _BUILT:
        _BUILT.update(build_kernels())
    return _BUILT


def build_kernels() -> dict[str, Any]:
    """jit-compiled forward and backward block scans (the recursions of :mod:`.hmm`); rows at
    index >= ``n`` are padding and leave the carry unchanged."""
    jax, jnp = load_jax()

    def lognorm(logp):
        top = logp.max()
        p = jnp.exp(logp - top)
        total = p.sum()
        return p / total, jnp.log(total) + top

    def norm_or_log(p, logp_fn, floor):
        c = p.sum()
        ok = (c > floor) & (c < jnp.inf)
        return jax.lax.cond(ok, lambda: (p / c, jnp.log(c)), lambda: lognorm(logp_fn()))

    def forward(ll, lik, A, pred0, n, floor):
        def step(pred, row):
            ll_t, lik_t, t = row
            f, logc = norm_or_log(pred * lik_t, lambda: jnp.log(pred) + ll_t, floor)
            live = t < n
            return jnp.where(live, f @ A, pred), (f, jnp.where(live, logc, 0.0))

        rows = (ll, lik, jnp.arange(ll.shape[0]))
        pred, (out, logcs) = jax.lax.scan(step, pred0, rows, unroll=UNROLL)
        return out, pred, logcs

    def backward(ll, lik, filtered, A, beta0, n, floor):
        def step(carry, row):
            beta, msg = carry
            ll_t, lik_t, t = row
            m, _ = norm_or_log(lik_t * beta, lambda: jnp.log(beta) + ll_t, floor)
            live = t < n
            return (jnp.where(live, A @ m, beta), jnp.where(live, m, msg)), beta

        rows = (ll, lik, jnp.arange(ll.shape[0]))
        carry, betas = jax.lax.scan(step, (beta0, beta0), rows, reverse=True, unroll=UNROLL)
        # posterior rows, vectorised: normalise(f * beta), or in log space where that underflows
        g = filtered * betas
        sums = g.sum(axis=1, keepdims=True)
        ok = (sums > floor) & (sums < jnp.inf)

        def with_log_rows():
            logg = jnp.log(filtered) + jnp.log(betas)
            e = jnp.exp(logg - logg.max(axis=1, keepdims=True))
            return jnp.where(ok, g / jnp.where(ok, sums, 1.0), e / e.sum(axis=1, keepdims=True))

        post = jax.lax.cond(ok.all(), lambda: g / sums, with_log_rows)
        return post, carry

    return {"forward": jax.jit(forward), "backward": jax.jit(backward)}


def _pad(x: np.ndarray, value: float) -> np.ndarray:
    """A block of ``BLOCK`` rows (the last block of a chunk is padded with ``value``)."""
    if len(x) == BLOCK:
        return x
    out = np.full((BLOCK, *x.shape[1:]), value, dtype=x.dtype)
    out[: len(x)] = x
    return out


def _release(*arrays: Any) -> None:
    for a in arrays:
        if a is not None and hasattr(a, "delete"):
            a.delete()


def forward_jax(
    ll: np.ndarray,
    A: np.ndarray,
    pred: np.ndarray,
    dtype: str = "float64",
    keep: bool = True,
    t0: int = 0,
) -> tuple[np.ndarray | None, np.ndarray, float]:
    """:func:`.hmm.forward_numpy` on jax (same arguments and results)."""
    jax, jnp = load_jax()

    dt = np.dtype(dtype)
    n_rows, s = ll.shape
    out = np.empty((n_rows, s), dtype=dt) if keep else None
    logz = 0.0
    fn = _kernels()["forward"]
    with jax.enable_x64(dt == np.float64):
        dA, carry = jnp.asarray(A, dtype=dt), jnp.asarray(pred, dtype=dt)
        for a in range(0, n_rows, BLOCK):
            shifted, lik, lmax = emission_scale(ll[a : a + BLOCK], dt, t0 + a)
            n = len(lik)  # numpy blocks go straight to jit's fast device_put
            f, nxt, logcs = fn(_pad(shifted, 0.0), _pad(lik, 1.0), dA, carry, n, floor_of(dt))
            jax.block_until_ready((f, nxt, logcs))
            if out is not None:
                out[a : a + n] = np.asarray(f)[:n]
            logz += float(np.asarray(logcs, dtype=np.float64).sum() + lmax.sum(dtype=np.float64))
            _release(f, logcs, carry)
            carry = nxt
        result = np.array(carry)
        _release(carry, dA)
    return out, result, logz


def backward_jax(
    ll: np.ndarray,
    A: np.ndarray,
    filtered: np.ndarray,
    msg: np.ndarray | None,
    dtype: str = "float64",
    t0: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`.hmm.backward_numpy` on jax (same arguments and results)."""
    jax, jnp = load_jax()

    dt = np.dtype(dtype)
    n_rows, s = ll.shape
    A = np.asarray(A, dtype=dt)
    beta = np.ones(s, dtype=dt) if msg is None else A @ np.asarray(msg, dtype=dt)
    post = np.empty((n_rows, s), dtype=dt)
    fn = _kernels()["backward"]
    with jax.enable_x64(dt == np.float64):
        dA, carry = jnp.asarray(A), jnp.asarray(beta)
        m = None
        for a in reversed(range(0, n_rows, BLOCK)):
            shifted, lik, _ = emission_scale(ll[a : a + BLOCK], dt, t0 + a)
            n = len(lik)
            f = np.asarray(filtered[a : a + n], dtype=dt)
            blocks = (_pad(shifted, 0.0), _pad(lik, 1.0), _pad(f, 1.0))
            g, (nxt, m_new) = fn(*blocks, dA, carry, n, floor_of(dt))
            jax.block_until_ready((g, nxt, m_new))
            post[a : a + n] = np.asarray(g)[:n]
            _release(g, carry, m)
            carry, m = nxt, m_new
        result = np.array(m)
        _release(carry, m, dA)
    return post, result
