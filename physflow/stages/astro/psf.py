"""Point-spread functions rendered *integrated over pixels*, and their enclosed-flux curves.

Pixel (i, j) of an image covers x in [j - 0.5, j + 0.5], y in [i - 0.5, i + 0.5] (0-based pixel
centres, FITS pixel j+1). A star's pixel values are the integral of its PSF over each pixel, not
the PSF sampled at the centre, so the image holds exactly the star's flux and aperture sums can
be compared with closed forms at tight tolerance.
"""

from __future__ import annotations

import math

import numpy as np

#: Gauss-Legendre order per pixel axis for the Moffat profile (no closed-form pixel integral).
MOFFAT_ORDER = 12


def _erf(x: np.ndarray) -> np.ndarray:
    """Vectorised error function (math.erf is correctly rounded to ~1 ulp)."""
    return np.vectorize(math.erf, otypes=[float])(x)


def gaussian_pixel_fractions(n: int, centre: float, sigma: float, start: int = 0) -> np.ndarray:
    """Fraction of a 1-D Gaussian (mean ``centre``) falling in pixels ``start .. start+n-1``."""
    edges = (np.arange(start, start + n + 1) - 0.5 - centre) / (sigma * math.sqrt(2.0))
    cdf = 0.5 * (1.0 + _erf(edges))
    return np.diff(cdf)


def gaussian_stamp(
    x: float, y: float, sigma: float, x0: int, y0: int, nx: int, ny: int
) -> np.ndarray:
    """Unit-flux circular Gaussian integrated over pixels of the box (y0:y0+ny, x0:x0+nx)."""
    fx = gaussian_pixel_fractions(nx, x, sigma, x0)
    fy = gaussian_pixel_fractions(ny, y, sigma, y0)
    return np.outer(fy, fx)


def moffat_stamp(
    x: float, y: float, alpha: float, beta: float, x0: int, y0: int, nx: int, ny: int
) -> np.ndarray:
    """Unit-flux Moffat ``(beta-1)/(pi alpha^2) (1 + r^2/alpha^2)^-beta`` integrated over the
    pixels of the box by Gauss-Legendre quadrature (``MOFFAT_ORDER`` points per axis)."""
    nodes, weights = np.polynomial.legendre.leggauss(MOFFAT_ORDER)
    offsets, w = 0.5 * nodes, 0.5 * weights  # pixel of width 1 centred on 0
    px = (np.arange(x0, x0 + nx)[:, None] + offsets[None, :]).ravel() - x
    py = (np.arange(y0, y0 + ny)[:, None] + offsets[None, :]).ravel() - y
    r2 = py[:, None] ** 2 + px[None, :] ** 2
    norm = (beta - 1.0) / (math.pi * alpha**2)
    values = norm * (1.0 + r2 / alpha**2) ** (-beta)
    values = values.reshape(ny, MOFFAT_ORDER, nx, MOFFAT_ORDER)
    return np.einsum("iajb,a,b->ij", values, w, w)


def gaussian_enclosed(r: float | np.ndarray, sigma: float) -> float | np.ndarray:
    """Fraction of a circular Gaussian's flux within radius ``r``: 1 - exp(-r^2 / 2 sigma^2)."""
    return -np.expm1(-np.square(r) / (2.0 * sigma**2))


def moffat_enclosed(r: float | np.ndarray, alpha: float, beta: float) -> float | np.ndarray:
    """Fraction of a Moffat profile's flux within radius ``r``: 1 - (1 + r^2/alpha^2)^(1-beta)."""
    return 1.0 - (1.0 + np.square(r) / alpha**2) ** (1.0 - beta)


def moffat_fwhm(alpha: float, beta: float) -> float:
    return 2.0 * alpha * math.sqrt(2.0 ** (1.0 / beta) - 1.0)


def stamp_radius(kind: str, sigma: float, alpha: float, beta: float, tail: float) -> int:
    """Half-size of the box a star is rendered in: the radius outside which less than ``tail``
    of the flux lies (the rest is dropped, and counted by ``enclosed``)."""
    if kind == "gaussian":
        r = sigma * math.sqrt(-2.0 * math.log(tail))
    else:
        r = alpha * math.sqrt(tail ** (1.0 / (1.0 - beta)) - 1.0)
    return math.ceil(r) + 1
