"""Single-polarisation fibre propagation: loss, chromatic dispersion and Kerr nonlinearity.

Nonlinear Schroedinger equation (Agrawal): dA/dz = -a/2 A - j b2/2 d2A/dt2 + j g |A|^2 A, with
the field A in sqrt(W). Linear propagation is exact in the frequency domain; with g != 0 the
symmetric split-step Fourier method is used (half linear step, the nonlinear phase of the whole
step, half linear step).
"""

from __future__ import annotations

import math

import numpy as np

SPEED_OF_LIGHT_M_S = 299_792_458.0
_DB_PER_NEPER = 10.0 * math.log10(math.e)


def beta2_s2_per_m(dispersion_ps_nm_km: float, wavelength_nm: float) -> float:
    """Group-velocity dispersion b2 = -D lambda^2 / (2 pi c), in s^2/m."""
    d_si = dispersion_ps_nm_km * 1e-6  # ps/(nm km) -> s/m^2
    lam = wavelength_nm * 1e-9
    return -d_si * lam**2 / (2 * math.pi * SPEED_OF_LIGHT_M_S)


def alpha_per_m(alpha_db_per_km: float) -> float:
    """Power attenuation coefficient in 1/m (natural units) from dB/km."""
    return alpha_db_per_km / _DB_PER_NEPER / 1e3


def angular_frequencies(n_samples: int, sample_rate_hz: float) -> np.ndarray:
    return 2 * np.pi * np.fft.fftfreq(n_samples, d=1.0 / sample_rate_hz)


def linear_operator(omega: np.ndarray, alpha: float, beta2: float, length_m: float) -> np.ndarray:
    """Transfer function of loss + dispersion over ``length_m`` (numpy FFT sign convention)."""
    return np.exp((-alpha / 2 + 0.5j * beta2 * omega**2) * length_m)


def cd_compensator(omega: np.ndarray, beta2: float, length_m: float) -> np.ndarray:
    """The all-pass filter that undoes the dispersion accumulated over ``length_m``."""
    return np.exp(-0.5j * beta2 * omega**2 * length_m)


def propagate_linear(
    field: np.ndarray, sample_rate_hz: float, length_m: float, alpha: float, beta2: float
) -> np.ndarray:
    omega = angular_frequencies(field.size, sample_rate_hz)
    return np.fft.ifft(np.fft.fft(field) * linear_operator(omega, alpha, beta2, length_m))


def step_lengths(length_m: float, step_m: float) -> list[float]:
    """Equal steps no longer than ``step_m`` covering ``length_m``."""
    if step_m <= 0:
        raise ValueError(f"step length must be > 0, got {step_m} m")
    n = max(1, math.ceil(length_m / step_m - 1e-9))
    return [length_m / n] * n


def propagate_ssfm(
    field: np.ndarray,
    sample_rate_hz: float,
    length_m: float,
    alpha: float,
    beta2: float,
    gamma_per_w_m: float,
    step_m: float,
) -> np.ndarray:
    """Symmetric split-step Fourier propagation; every step is unitary when alpha = 0."""
    omega = angular_frequencies(field.size, sample_rate_hz)
    steps = step_lengths(length_m, step_m)
    h = steps[0]
    half = linear_operator(omega, alpha, beta2, h / 2)
    full = half * half
    # The Kerr phase of a step is g |A(start)|^2 Leff(h); the kick is applied at mid-step, where
    # the power is lower by exp(-alpha h / 2): hence 2 sinh(alpha h / 2) / alpha (exact if b2 = 0).
    l_eff = h if alpha == 0 else 2 * math.sinh(alpha * h / 2) / alpha
    spectrum = np.fft.fft(field) * half
    for index in range(len(steps)):
        a = np.fft.ifft(spectrum)
        a *= np.exp(1j * gamma_per_w_m * l_eff * (a.real**2 + a.imag**2))
        spectrum = np.fft.fft(a)
        spectrum *= full if index < len(steps) - 1 else half
    return np.fft.ifft(spectrum)
