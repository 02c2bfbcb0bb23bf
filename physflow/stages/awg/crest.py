"""Crest-factor optimisation: start phases that minimise peak / RMS of a multi-tone sum.

N equal tones in phase reach N times one amplitude while their RMS is sqrt(N/2) amplitudes:
crest factor sqrt(2N). Spreading the phases lowers the peak and so the clipping headroom a
program needs. The optimiser minimises a smooth p-norm of the sampled waveform (p = 8, then 32,
approaching the maximum) by Adam steps from Schroeder's, Newman's and a few fixed random starts
(all at once, as matrix products), and keeps the start whose optimum has the lowest sampled
peak. It is deterministic: a function of (frequencies, amplitudes, sample rate) alone, cached
per signature (``ctx.memo`` in the store and an in-process table in front of it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from .model import CrestSignature

#: Samples evaluated: about two periods of the slowest beat between tones, within these bounds.
WINDOW_MIN, WINDOW_MAX = 1024, 16384
RANDOM_STARTS = 3
STAGES_P = (8, 32)
MAX_ITER = 150
LEARNING_RATE = 0.02
_CACHE_SIZE = 256

_lock = threading.Lock()
_cache: OrderedDict[tuple, tuple[float, ...]] = OrderedDict()
_stats = {"optimisations": 0, "cache_hits": 0}


def stats() -> dict[str, int]:
    """How many optimisations ran in this process, and how many in-process cache hits."""
    with _lock:
        return dict(_stats)


def clear_cache() -> None:
    """Forget the in-process results and counters (tests)."""
    with _lock:
        _cache.clear()
        _stats.update(optimisations=0, cache_hits=0)


def window_samples(freqs: np.ndarray, fs: float) -> int:
    """About two periods of the slowest beat between two tones."""
    f = np.sort(freqs)
    gaps = np.diff(f)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return WINDOW_MIN
    return int(np.clip(round(2 * fs / gaps.min()), WINDOW_MIN, WINDOW_MAX))


def _basis(freqs: np.ndarray, fs: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    turns = np.outer(freqs / fs, np.arange(n)) % 1.0
    return np.cos(2 * np.pi * turns), np.sin(2 * np.pi * turns)


def _ipow(x: np.ndarray, e: int) -> np.ndarray:
    """x**e for an integer e >= 1 by squaring (numpy's power calls pow() per element)."""
    result, base = None, x
    while e:
        if e & 1:
            result = base if result is None else result * base
        e >>= 1
        if e:
            base = base * base
    assert result is not None
    return result


def _objective(phi: np.ndarray, a: np.ndarray, c: np.ndarray, s: np.ndarray, p: int) -> tuple:
    """For each row of ``phi`` (starts x tones): (mean x^p)^(1/p) of the waveform
    x = sum_i a_i cos(w_i t + phi_i), its gradient in phi, and x itself."""
    ac, as_ = a * np.cos(phi), a * np.sin(phi)
    x = ac @ c - as_ @ s  # (starts, window)
    xp1 = _ipow(x, p - 1)
    m = np.mean(xp1 * x, axis=1, keepdims=True)
    value = m ** (1.0 / p)
    w = xp1 / x.shape[1]
    grad = (value / m) * (-(as_) * (w @ c.T) - ac * (w @ s.T))
    return value[:, 0], grad, x


def schroeder(a: np.ndarray) -> np.ndarray:
    """Schroeder's phases for tones with power fractions p: -2 pi sum_{l<k} (k-l) p_l."""
    p = a**2 / np.sum(a**2)
    k = np.arange(len(a))
    return np.array([-2 * np.pi * np.sum((i - k[:i]) * p[:i]) for i in k])


def _starts(t: int) -> list[np.ndarray]:
    rng = np.random.default_rng(12345)  # fixed: results depend on the signature only
    newman = np.pi * np.arange(t) ** 2 / t
    return [newman, *(rng.uniform(0, 2 * np.pi, t) for _ in range(RANDOM_STARTS))]


def _descend(phi: np.ndarray, a: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Adam on the p-norm, all starts at once (rows of ``phi``); a fixed number of steps."""
    for p in STAGES_P:
        m1, m2 = np.zeros_like(phi), np.zeros_like(phi)
        for k in range(1, MAX_ITER + 1):
            value, grad, _ = _objective(phi, a, c, s, p)
            grad = grad / value[:, None]  # scale-free steps
            m1 = 0.9 * m1 + 0.1 * grad
            m2 = 0.999 * m2 + 0.001 * grad * grad
            step = (m1 / (1 - 0.9**k)) / (np.sqrt(m2 / (1 - 0.999**k)) + 1e-12)
            phi = phi - LEARNING_RATE * step
    return phi


def optimise_phases(
    freqs_hz: tuple[float, ...], amps: tuple[int, ...], sample_rate_hz: float
) -> tuple[float, ...]:
    """Start phases (turns, in the tones' given order) minimising the sampled crest factor."""
    t = len(freqs_hz)
    a = np.asarray(amps, dtype=np.float64)
    if t < 2 or not np.any(a):
        return (0.0,) * t
    with _lock:
        _stats["optimisations"] += 1
    f = np.asarray(freqs_hz, dtype=np.float64)
    order = np.argsort(f, kind="stable")
    c, s = _basis(f, sample_rate_hz, window_samples(f, sample_rate_hz))
    an = a / a.sum()
    first = np.empty(t)
    first[order] = schroeder(an[order])
    phi = _descend(np.stack([first, *_starts(t)]), an, c, s)
    _, _, x = _objective(phi, an, c, s, 2)
    best = phi[int(np.argmin(np.abs(x).max(axis=1)))]
    return tuple(float(v) for v in (best / (2 * np.pi)) % 1.0)


optimise_phases.__physflow_deps__ = (  # type: ignore[attr-defined]
    _objective,
    _ipow,
    _descend,
    _basis,
    schroeder,
    _starts,
    window_samples,
    (WINDOW_MIN, WINDOW_MAX, RANDOM_STARTS, STAGES_P, MAX_ITER, LEARNING_RATE),
)


def crest_phases(sig: CrestSignature, fs: float, ctx: Any = None) -> tuple[float, ...]:
    """The optimum for ``sig``: from this process's table, else ``ctx.memo`` (the store), else
    computed. Safe to share: a pure function of its arguments."""
    key = (sig.freqs_hz, sig.amps, fs)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            _stats["cache_hits"] += 1
            return found
    if ctx is not None:
        value = tuple(ctx.memo(optimise_phases, sig.freqs_hz, sig.amps, fs))
    else:
        value = optimise_phases(sig.freqs_hz, sig.amps, fs)
    with _lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def crest_factor(x: np.ndarray) -> float:
    """Peak over RMS of a sampled waveform."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.abs(x).max() / np.sqrt(np.mean(x * x)))
