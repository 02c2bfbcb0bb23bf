"""Root-raised-cosine pulse shaping and matched filtering, done exactly in the frequency domain.

Signals are treated as periodic (one FFT block), as is usual in link simulation: fibre
dispersion is applied by FFT anyway, there are no filter transients to discard, and because the
DFT grid puts the spectral copies exactly one symbol rate apart, RRC x RRC satisfies the Nyquist
criterion to machine precision (zero ISI after the matched filter).
"""

from __future__ import annotations

import numpy as np


def raised_cosine_spectrum(n_samples: int, samples_per_symbol: int, rolloff: float) -> np.ndarray:
    """RC spectrum |H(f)|^2 with peak 1 on the FFT grid (f in units of the symbol rate)."""
    f = np.abs(np.fft.fftfreq(n_samples, d=1.0 / samples_per_symbol))
    lo, hi = (1 - rolloff) / 2, (1 + rolloff) / 2
    spectrum = np.zeros(n_samples)
    spectrum[f <= lo] = 1.0
    if rolloff > 0:
        band = (f > lo) & (f <= hi)
        spectrum[band] = 0.5 * (1 + np.cos(np.pi / rolloff * (f[band] - lo)))
    return spectrum


def rrc_response(n_samples: int, samples_per_symbol: int, rolloff: float) -> np.ndarray:
    """RRC frequency response scaled so i.i.d. unit-energy symbols give unit mean power."""
    return samples_per_symbol * np.sqrt(
        raised_cosine_spectrum(n_samples, samples_per_symbol, rolloff)
    )


def upsample(symbols: np.ndarray, samples_per_symbol: int) -> np.ndarray:
    out = np.zeros(symbols.size * samples_per_symbol, dtype=np.complex128)
    out[::samples_per_symbol] = symbols
    return out


def shape(symbols: np.ndarray, samples_per_symbol: int, rolloff: float) -> np.ndarray:
    """Oversampled RRC waveform of a symbol block (circular convolution)."""
    up = upsample(symbols, samples_per_symbol)
    return np.fft.ifft(np.fft.fft(up) * rrc_response(up.size, samples_per_symbol, rolloff))


def matched_filter_spectrum(
    spectrum: np.ndarray, samples_per_symbol: int, rolloff: float
) -> np.ndarray:
    """Apply the matched RRC filter to a spectrum; with :func:`shape` the pair has unit gain."""
    return spectrum * rrc_response(spectrum.size, samples_per_symbol, rolloff) / samples_per_symbol


def rrc_taps_circular(taps: np.ndarray, n_samples: int) -> np.ndarray:
    """Place an odd-length, centred FIR filter on a circular grid of n_samples (centre at 0)."""
    if taps.size % 2 == 0 or taps.size > n_samples:
        raise ValueError(
            f"need an odd number of taps <= the block length ({n_samples}), got {taps.size}"
        )
    grid = np.zeros(n_samples, dtype=np.complex128)
    grid[: taps.size] = taps
    return np.roll(grid, -(taps.size // 2))
