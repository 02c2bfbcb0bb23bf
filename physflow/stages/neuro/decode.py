"""``neuro.filter`` and ``neuro.smoother``: chunked HMM decoding in O(chunk) memory.

The filter reads the log-likelihood lazily one chunk at a time, carries the predicted
distribution across chunk boundaries and streams the causal posterior into the store. Each
chunk goes through ``ctx.memo`` keyed by (its log-likelihood, the carry in, the transition
matrix's digest, precision, backend, stored dtype), so appending time bins recomputes only the
new chunks. Its ``checkpoints`` output keeps the carry at the start of every chunk.

The smoother walks the chunks in reverse with the backward message as its carry. It needs the
filtered posterior of each chunk: the stored causal posterior when it was kept at float32 or
float64 (``reuse_causal``), otherwise it re-runs the forward pass of that chunk from its
checkpoint (one extra matrix-vector product per bin, no (T, S) array in memory or on disk).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from . import hmm, hmm_jax
from .posterior import (
    Backend,
    DigestedArray,
    PosteriorDtype,
    Precision,
    decode_posterior,
    encode_posterior,
    is_exact_enough,
)
from .writer import BackgroundWriter

log = logging.getLogger("physflow.stages.neuro")


class FilterConfig(pf.Config):
    chunk_size: Annotated[int, msgspec.Meta(gt=0)] = 25_000
    posterior_dtype: PosteriorDtype = "float32"
    backend: Backend = "numpy"
    #: Arithmetic of the recursions (float64: exact to ~1e-15; float32: faster on jax).
    precision: Precision = "float64"
    #: Store the causal posterior (T, S); false keeps only checkpoints and the evidence.
    persist_causal: bool = True
    #: zstd-compress the stored posterior chunks.
    compress: bool = True
    #: Cache each chunk in the store (reuse when time bins are appended).
    memo: bool = True

    def __post_init__(self) -> None:
        check_range(self, "chunk_size", gt=0)
        check_choice(self, "posterior_dtype", PosteriorDtype)
        check_choice(self, "backend", Backend)
        check_choice(self, "precision", Precision)


class SmootherConfig(pf.Config):
    posterior_dtype: PosteriorDtype = "float32"
    backend: Backend = "numpy"
    precision: Precision = "float64"
    compress: bool = True
    #: Use the stored causal posterior when it is float32/float64 (else re-run the filter).
    reuse_causal: bool = True

    def __post_init__(self) -> None:
        check_choice(self, "posterior_dtype", PosteriorDtype)
        check_choice(self, "backend", Backend)
        check_choice(self, "precision", Precision)


class Checkpoints(msgspec.Struct, frozen=True):
    """The filter's carry at the start of every chunk (what the smoother restarts from)."""

    starts: np.ndarray  # (K,) first bin of each chunk
    predicted: np.ndarray  # (K, S) float64: P(x_start | y before start)
    n_time: int


class FilterChunk(msgspec.Struct, frozen=True):
    causal: np.ndarray | None  # (C, S) in the stored dtype, or None
    pred: np.ndarray  # (S,) carry out
    log_evidence: float


def kernels(backend: str) -> tuple[Any, Any]:
    """(forward, backward) of a backend (same signatures and results)."""
    if backend == "jax":
        return hmm_jax.forward_jax, hmm_jax.backward_jax
    return hmm.forward_numpy, hmm.backward_numpy


def filter_chunk(
    ll: np.ndarray,
    A: DigestedArray,
    pred: np.ndarray,
    precision: str,
    backend: str,
    stored_dtype: str,
    t0: int,
) -> FilterChunk:
    """One chunk of the forward filter (``stored_dtype`` "" = do not keep the posterior)."""
    forward, _ = kernels(backend)
    out, nxt, logz = forward(ll, A.array, pred, precision, keep=bool(stored_dtype), t0=t0)
    causal = encode_posterior(out, stored_dtype) if stored_dtype else None
    return FilterChunk(causal=causal, pred=np.asarray(nxt, dtype=np.float64), log_evidence=logz)


#: The code a chunk's result depends on (the memo key and the stages' fingerprints).
KERNEL_DEPS = (
    kernels,
    FilterChunk,
    encode_posterior,
    hmm.forward_numpy,
    hmm.backward_numpy,
    hmm.combine,
    hmm.emission_scale,
    hmm.floor_of,
    hmm._log_normalise,
    hmm.ROWS,
    hmm_jax.load_jax,
    hmm_jax.build_kernels,
    hmm_jax.BLOCK,
    hmm_jax.UNROLL,
    hmm_jax._pad,
    hmm_jax._release,
    hmm_jax.forward_jax,
    hmm_jax.backward_jax,
)
filter_chunk.__physflow_deps__ = KERNEL_DEPS  # type: ignore[attr-defined]


def check_model(where: str, loglik: Any, transition: Any) -> tuple[int, int]:
    """(T, S) after checking that the likelihood and the transition matrix fit together."""
    if loglik.ndim != 2:
        raise ValueError(f"{where}: loglik must be (time, position), got shape {loglik.shape}")
    n_time, s = loglik.shape
    A = np.asarray(transition)
    if A.shape != (s, s):
        raise ValueError(
            f"{where}: transition is {A.shape} but loglik has {s} position bins; both must "
            "come from the same encode node (transition must be (S, S))"
        )
    rows = A.sum(axis=1)
    if not (np.isfinite(A).all() and (A >= 0).all() and np.allclose(rows, 1.0, atol=1e-9)):
        raise ValueError(
            f"{where}: transition must be row-stochastic (non-negative, finite, rows summing "
            f"to 1); row sums range {rows.min():.6g}..{rows.max():.6g}"
        )
    return n_time, s


def read(lazy: Any, a: int, b: int) -> np.ndarray:
    return np.asarray(lazy[a:b].compute(scheduler="synchronous"))


@pf.stage(
    version="1",
    outputs=["causal", "log_marginal", "checkpoints"],
    lazy=["loglik"],
    deps=[
        filter_chunk,
        check_model,
        read,
        Checkpoints,
        hmm.chunk_bounds,
        BackgroundWriter,
        *KERNEL_DEPS,
    ],
)
def hmm_filter(
    cfg: FilterConfig, loglik: Any, transition: np.ndarray, *, ctx: pf.StageContext
) -> dict[str, Any]:
    """Causal posterior P(x_t | y_0..t), log p(y_0..T-1), and per-chunk checkpoints."""
    n_time, s = check_model("filter", loglik, transition)
    A = DigestedArray(np.asarray(transition, dtype=np.float64))
    chunk = min(cfg.chunk_size, n_time)
    out = None
    if cfg.persist_causal:
        out = ctx.output_array(
            "causal", (n_time, s), cfg.posterior_dtype, chunks=(chunk, s), compress=cfg.compress
        )
    stored = cfg.posterior_dtype if cfg.persist_causal else ""
    pred = np.full(s, 1.0 / s)
    starts, preds, total = [], [], 0.0
    before = ctx.memo_misses
    bounds = hmm.chunk_bounds(n_time, chunk)
    with BackgroundWriter() as writer:
        for k, (a, b) in enumerate(bounds):
            args = (read(loglik, a, b), A, pred, cfg.precision, cfg.backend, stored, a)
            res = ctx.memo(filter_chunk, *args) if cfg.memo else filter_chunk(*args)
            if out is not None:
                writer.put(out, (k, 0), res.causal)
            starts.append(a)
            preds.append(pred)
            pred, total = res.pred, total + res.log_evidence
    if cfg.memo:
        done = ctx.memo_misses - before
        n = len(bounds)
        log.info("filter: computed %d of %d chunks (%d reused)", done, n, n - done)
    checkpoints = Checkpoints(
        starts=np.asarray(starts, dtype=np.int64), predicted=np.stack(preds), n_time=n_time
    )
    return {"causal": out, "log_marginal": float(total), "checkpoints": checkpoints}


@pf.stage(
    version="1",
    lazy=["loglik", "causal"],
    deps=[check_model, read, decode_posterior, is_exact_enough, BackgroundWriter, *KERNEL_DEPS],
)
def hmm_smoother(
    cfg: SmootherConfig,
    loglik: Any,
    transition: np.ndarray,
    checkpoints: Any,
    causal: Any = None,
    *,
    ctx: pf.StageContext,
) -> Any:
    """Acausal posterior P(x_t | all y), written chunk by chunk from the last chunk back."""
    n_time, s = check_model("smoother", loglik, transition)
    if checkpoints.n_time != n_time:
        raise ValueError(
            f"smoother: checkpoints come from a filter over {checkpoints.n_time} bins but loglik "
            f"has {n_time}; connect both to the same likelihood node"
        )
    starts = [int(a) for a in checkpoints.starts]
    bounds = list(zip(starts, [*starts[1:], n_time]))
    stored = (
        cfg.reuse_causal
        and causal is not None
        and tuple(causal.shape) == (n_time, s)
        and is_exact_enough(causal.dtype)
    )
    forward, backward = kernels(cfg.backend)
    A = np.asarray(transition, dtype=np.float64)
    out = ctx.output_array(
        "value", (n_time, s), cfg.posterior_dtype, chunks=(bounds[0][1], s), compress=cfg.compress
    )
    msg = None
    with BackgroundWriter() as writer:
        for k in range(len(bounds) - 1, -1, -1):
            a, b = bounds[k]
            ll = read(loglik, a, b)
            if stored:
                f = decode_posterior(read(causal, a, b))  # the kernel converts block by block
            else:
                f, _, _ = forward(ll, A, checkpoints.predicted[k], cfg.precision, keep=True, t0=a)
            post, msg = backward(ll, A, f, msg, cfg.precision, t0=a)
            writer.put(out, (k, 0), encode_posterior(post, cfg.posterior_dtype))
            del f, post
    return out
