"""Waveforms for the synthetic recordings: tones, RRC-shaped QPSK bursts and linear chirps.

Every burst is scaled to an in-band SNR against the noise density: power P = SNR * N0 * B with
B its occupied bandwidth (QPSK: symbol rate * (1 + roll-off); chirp: the swept range). That is
the SNR of a spectrogram cell inside the burst, up to the window's noise bandwidth.
"""

from __future__ import annotations

import math

import numpy as np


def rrc_taps(rolloff: float, sps: int, span: int) -> np.ndarray:
    """Root-raised-cosine impulse response, ``span`` symbols long, unit energy."""
    t = np.arange(-span * sps // 2, span * sps // 2 + 1) / sps
    b = rolloff
    h = np.empty_like(t)
    for i, ti in enumerate(t):
        if abs(ti) < 1e-12:
            h[i] = 1.0 + b * (4 / math.pi - 1)
        elif b > 0 and abs(abs(ti) - 1 / (4 * b)) < 1e-9:
            h[i] = (b / math.sqrt(2)) * (
                (1 + 2 / math.pi) * math.sin(math.pi / (4 * b))
                + (1 - 2 / math.pi) * math.cos(math.pi / (4 * b))
            )
        else:
            num = math.sin(math.pi * ti * (1 - b)) + 4 * b * ti * math.cos(math.pi * ti * (1 + b))
            h[i] = num / (math.pi * ti * (1 - (4 * b * ti) ** 2))
    return h / np.sqrt(np.sum(h**2))


def ramp(n: int, n_ramp: int) -> np.ndarray:
    """Raised-cosine on/off envelope (bursts do not switch on abruptly, which would splatter)."""
    env = np.ones(n)
    n_ramp = min(n_ramp, n // 2)
    if n_ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_ramp) + 0.5) / n_ramp)
        env[:n_ramp] = r
        env[n - n_ramp :] = r[::-1]
    return env


def qpsk_burst(
    rng: np.random.Generator, n: int, sample_rate_hz: float, bandwidth_hz: float, rolloff: float
) -> tuple[np.ndarray, float]:
    """Unit-power QPSK with RRC pulses at the integer oversampling closest to the requested
    bandwidth; returns (baseband samples, actual occupied bandwidth)."""
    sps = max(2, round(sample_rate_hz * (1 + rolloff) / bandwidth_hz))
    span = 8
    n_sym = n // sps + span + 2
    symbols = (rng.choice([-1.0, 1.0], n_sym) + 1j * rng.choice([-1.0, 1.0], n_sym)) / np.sqrt(2)
    shaped = upsample_filter(rrc_taps(rolloff, sps, span), symbols, sps)
    start = span * sps // 2 + sps  # past the filter's run-in
    wave = shaped[start : start + n]
    wave = wave / np.sqrt(np.mean(np.abs(wave) ** 2))
    return wave, sample_rate_hz * (1 + rolloff) / sps


def upsample_filter(taps: np.ndarray, symbols: np.ndarray, up: int) -> np.ndarray:
    """Zero-stuff ``symbols`` by ``up`` and filter with ``taps`` (full convolution, by FFT;
    what scipy.signal.upfirdn computes, without importing scipy.signal)."""
    stuffed = np.zeros((symbols.size - 1) * up + 1, dtype=np.complex128)
    stuffed[::up] = symbols
    n = stuffed.size + taps.size - 1
    size = 1 << (n - 1).bit_length()
    out = np.fft.ifft(np.fft.fft(stuffed, size) * np.fft.fft(taps, size))
    return out[:n]


def chirp(n: int, sample_rate_hz: float, f_from: float, f_to: float) -> np.ndarray:
    """Unit-amplitude linear FM from ``f_from`` to ``f_to`` (Hz, baseband) over n samples."""
    t = np.arange(n) / sample_rate_hz
    duration = n / sample_rate_hz
    k = (f_to - f_from) / duration
    return np.exp(2j * np.pi * (f_from * t + 0.5 * k * t * t))


def mix(wave: np.ndarray, freq_hz: float, sample_rate_hz: float, start: int) -> np.ndarray:
    """Shift ``wave`` (which starts at absolute sample ``start``) to ``freq_hz``."""
    t = (start + np.arange(wave.size)) / sample_rate_hz
    return wave * np.exp(2j * np.pi * freq_hz * t)
