"""Sample synthesis: resolved segment content -> int16 codes, one code path for numpy and cupy.

Constant-frequency tones (holds, amplitude ramps) are one matrix product: the segment is cut
into blocks of ``BLOCK`` samples; within a block every tone is a fixed table of cos/sin values
rotated by a per-block complex coefficient, and a linear amplitude ramp adds a second table
weighted by the sample index. ``(blocks x 4T) @ (4T x BLOCK)`` gives all samples at BLAS speed,
with every coefficient computed directly from its exact phase (no accumulated rotation error).
Holds use integer arithmetic for their phases (whole cycles: ``k * n mod N``), so a hold is
exactly periodic. Swept tones (chirps, moves) evaluate their phase polynomial directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .model import FULL_CODE, PHASE_WORDS, ChannelContent, CrestSignature, SegmentContent

#: Block length of the constant-frequency kernel (part of the result's bits: a code constant).
BLOCK = 1024
#: Samples per pass of the swept kernel (bounds temporary memory).
SWEEP_CHUNK = 1 << 16
TWO_PI = 2.0 * np.pi

CrestLookup = Callable[[CrestSignature, float], Sequence[float]]


def array_module(name: str) -> Any:
    """``numpy`` or ``cupy`` (optional: a clear error says how to install it)."""
    if name == "numpy":
        return np
    if name == "cupy":
        try:
            import cupy
        except ImportError as exc:
            raise ImportError(
                "array_module 'cupy' needs CuPy and a CUDA GPU: pip install cupy-cuda12x "
                f"(or use array_module 'numpy'); import failed: {exc}"
            ) from None
        return cupy
    raise ValueError(f"array_module {name!r} is not 'numpy' or 'cupy'")


def to_host(x: Any) -> np.ndarray:
    """A numpy array from a numpy or cupy array."""
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)


def start_turns(ch: ChannelContent, fs: float, crest: CrestLookup | None) -> np.ndarray:
    """Start phase of every tone in turns: the phase word, plus the crest optimum if any."""
    turns = np.asarray(ch.phase0, dtype=np.float64) / PHASE_WORDS
    if ch.crest is not None:
        if crest is None:
            raise ValueError("segment content needs crest-optimised phases but no lookup given")
        turns = (turns + np.asarray(crest(ch.crest, fs), dtype=np.float64)) % 1.0
    return turns


def _hold_phases(cycles: Sequence[int], n: int, idx: np.ndarray) -> np.ndarray:
    """Turns of ``k * idx / n`` for integer cycles ``k``, exactly (integer modulo first)."""
    k = np.asarray(cycles, dtype=np.int64)[:, None]
    return ((k * idx[None, :].astype(np.int64)) % n) / float(n)


def constant_frequency(ch: ChannelContent, n: int, fs: float, turns0: np.ndarray, xp: Any) -> Any:
    """Sum of constant-frequency tones with linear amplitude ramps, as float64 (length n)."""
    blocks = -(-n // BLOCK)
    local = np.arange(BLOCK)
    starts = np.arange(blocks) * BLOCK
    if ch.cycles is not None:
        table_turns = _hold_phases(ch.cycles, n, local)
        block_turns = _hold_phases(ch.cycles, n, starts)
    else:
        rate = np.asarray(ch.f0_hz, dtype=np.float64)[:, None] / fs
        table_turns = (rate * local[None, :]) % 1.0
        block_turns = (rate * starts[None, :]) % 1.0
    theta = TWO_PI * ((turns0[:, None] + block_turns) % 1.0)  # (T, blocks)
    a0 = np.asarray(ch.a0, dtype=np.float64)[:, None]
    da = (np.asarray(ch.a1, dtype=np.float64) - a0[:, 0])[:, None]
    amp = a0 + da * (starts[None, :] / n)
    cos_t, sin_t = np.cos(TWO_PI * table_turns), np.sin(TWO_PI * table_turns)
    coeff = [amp * np.cos(theta), -amp * np.sin(theta)]
    table = [cos_t, sin_t]
    if np.any(da):
        slope = da / n
        coeff += [slope * np.cos(theta), -slope * np.sin(theta)]
        table += [cos_t * local[None, :], sin_t * local[None, :]]
    c = xp.asarray(np.concatenate(coeff, axis=0).T)  # (blocks, K)
    t = xp.asarray(np.concatenate(table, axis=0))  # (K, BLOCK)
    return (c @ t).reshape(-1)[:n]


def _sweep_shape(kind: str, s: Any, xp: Any) -> Any:
    """Integral of the normalised frequency profile: linear (chirp) or minimum jerk (move)."""
    if kind == "chirp":
        return 0.5 * s * s
    s2 = s * s
    return s2 * s2 * (2.5 - 3.0 * s + s2)  # integral of 10 s^3 - 15 s^4 + 6 s^5


def swept(ch: ChannelContent, kind: str, n: int, fs: float, turns0: np.ndarray, xp: Any) -> Any:
    """Sum of swept tones (chirp: linear, move: minimum-jerk frequency), as float64. The phase
    polynomial is evaluated directly per sample (no accumulation), in turns."""
    out = xp.empty(n, dtype=xp.float64)
    f0 = np.asarray(ch.f0_hz, dtype=np.float64)
    df = np.asarray(ch.f1_hz, dtype=np.float64) - f0
    r0 = xp.asarray((f0 / fs)[:, None])  # turns per sample at the start
    r1 = xp.asarray((df * n / fs)[:, None])  # turns added by the sweep over the profile
    p0 = xp.asarray(turns0[:, None])
    a0 = xp.asarray(np.asarray(ch.a0, dtype=np.float64))
    da = xp.asarray(np.asarray(ch.a1, dtype=np.float64) - np.asarray(ch.a0, dtype=np.float64))
    ramp = bool(np.any(np.asarray(ch.a1) != np.asarray(ch.a0)))
    for lo in range(0, n, SWEEP_CHUNK):
        idx = xp.arange(lo, min(n, lo + SWEEP_CHUNK), dtype=xp.float64)
        s = idx / n
        phase = r0 * idx[None, :]
        phase += r1 * _sweep_shape(kind, s, xp)[None, :]
        phase += p0
        phase *= TWO_PI
        xp.cos(phase, out=phase)
        x = a0 @ phase
        if ramp:
            x += (da @ phase) * s
        out[lo : lo + idx.shape[0]] = x
    return out


def to_codes(x: Any, xp: Any) -> tuple[Any, int, int, float]:
    """Round to DAC codes, clip at +-32767 (counted, never silent): codes, clipped, peak, rms."""
    r = xp.rint(x)
    over = xp.abs(r) > FULL_CODE
    clipped = int(over.sum())
    if clipped:
        r = xp.clip(r, -FULL_CODE, FULL_CODE)
    codes = r.astype(xp.int16)
    peak = int(xp.abs(r).max()) if r.size else 0
    rms = float(xp.sqrt(xp.mean(r * r))) if r.size else 0.0
    return codes, clipped, peak, rms


def synthesise(
    content: SegmentContent, xp: Any = np, crest: CrestLookup | None = None
) -> tuple[Any, tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
    """All channels of a segment: codes (channels, n) on ``xp``, clipped, peak, rms per channel."""
    n, fs = content.n_samples, content.sample_rate_hz
    rows, clipped, peak, rms = [], [], [], []
    for ch in content.channels:
        turns0 = start_turns(ch, fs, crest)
        if content.kind in ("hold", "ramp"):
            x = constant_frequency(ch, n, fs, turns0, xp)
        else:
            x = swept(ch, content.kind, n, fs, turns0, xp)
        codes, c, p, r = to_codes(x, xp)
        rows.append(codes)
        clipped.append(c)
        peak.append(p)
        rms.append(r)
    return xp.stack(rows), tuple(clipped), tuple(peak), tuple(rms)
