"""Small programs and measurements shared by the AWG tests."""

from __future__ import annotations

import numpy as np

from physflow.stages import awg

FS = 625e6


def one_tone(freq_hz: float = 90e6, amp: float = 0.5, **kwargs) -> awg.Program:
    return awg.Program([awg.Tones(freqs_hz=[freq_hz], amps=[amp])], **kwargs)


def equal_tones(n: int, spacing_hz: float = 1e6, amp: float = 0.05) -> awg.Program:
    freqs = [80e6 + spacing_hz * i for i in range(n)]
    return awg.Program([awg.Tones(freqs_hz=freqs, amps=[amp] * n)])


def instantaneous_frequency(x: np.ndarray, fs: float = FS, average: int = 32) -> np.ndarray:
    """From the analytic signal's unwrapped phase; a moving average of ``average`` samples
    (sample k of the result is centred on sample k + average/2 of ``x``)."""
    from scipy.signal import hilbert

    phase = np.unwrap(np.angle(hilbert(np.asarray(x, dtype=np.float64))))
    f = np.diff(phase) * fs / (2 * np.pi)
    return np.convolve(f, np.ones(average) / average, mode="valid")


def analytic_phase_steps(x: np.ndarray) -> np.ndarray:
    """Per-sample phase advance (radians) of the analytic signal."""
    from scipy.signal import hilbert

    return np.diff(np.unwrap(np.angle(hilbert(np.asarray(x, dtype=np.float64)))))


def misses(res) -> set[str]:
    return set(res.misses)
