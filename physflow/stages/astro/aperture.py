"""Exact area of overlap between a circle and the pixels of a grid (closed form).

The area of a circle (radius r, centred on the origin) within the quadrant {X <= x, Y <= y} is
``A(x, y) = integral from -r to x of clip(y, -s, s) + s dX`` with ``s = sqrt(r^2 - X^2)``; it has a
closed form piece by piece, and a pixel's overlap is ``A(x1,y1) - A(x0,y1) - A(x1,y0) + A(x0,y0)``.
This is what photutils calls the "exact" method; it does not depend on sub-sampling.
"""

from __future__ import annotations

import functools

import numpy as np


def _chord_integral(x: np.ndarray, r: float) -> np.ndarray:
    """Integral of sqrt(r^2 - X^2) from -r to x (x clipped to [-r, r])."""
    x = np.clip(x, -r, r)
    s = np.sqrt(np.maximum(r * r - x * x, 0.0))
    return 0.5 * (x * s + r * r * np.arcsin(x / r)) + 0.25 * np.pi * r * r


def _quadrant_area(x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Area of the disc of radius r (centre 0) with X <= x and Y <= y."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    yc = np.clip(y, -r, r)
    w = np.sqrt(np.maximum(r * r - yc * yc, 0.0))  # |X| < w: the line Y = y cuts the disc
    xa = np.clip(x, -r, r)
    full = 2.0 * _chord_integral(xa, r)  # y >= r: the whole strip X <= x
    # |X| < w: integrand y + s;   |X| >= w: 2 s (y >= 0) or 0 (y < 0)
    inner_hi = np.clip(xa, -w, w)
    inner = (inner_hi + w) * yc + (_chord_integral(inner_hi, r) - _chord_integral(-w, r))
    outer_left = 2.0 * _chord_integral(np.minimum(xa, -w), r)
    outer_right = 2.0 * (_chord_integral(xa, r) - _chord_integral(w, r)) * (xa > w)
    partial = inner + np.where(yc >= 0.0, outer_left + outer_right, 0.0)
    return np.where(y >= r, full, np.where(y <= -r, 0.0, partial))


def overlap_fractions(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    """Area of each pixel of an image of ``shape`` inside the circle (cx, cy, r); pixel (i, j)
    covers [j-0.5, j+0.5] x [i-0.5, i+0.5]. Values in [0, 1]; they sum to pi r^2 when the circle
    lies inside the image."""
    ny, nx = shape
    if r <= 0:
        return np.zeros(shape)
    xe = np.arange(nx + 1) - 0.5 - cx
    ye = np.arange(ny + 1) - 0.5 - cy
    a = _quadrant_area(xe[None, :], ye[:, None], r)
    out = a[1:, 1:] - a[:-1, 1:] - a[1:, :-1] + a[:-1, :-1]
    return np.clip(out, 0.0, 1.0)


@functools.lru_cache(maxsize=32)
def subpixel_operator(n: int, k: int) -> np.ndarray:
    """(n*k, n) matrix: the fluxes of n pixels along one axis -> the fluxes of their k*n
    sub-pixels, by a natural cubic spline through the cumulative flux at pixel edges. The
    cumulative is exact at pixel edges, so each pixel's sub-pixels sum to the pixel's value,
    and a linear cumulative (a flat sky) is reproduced exactly."""
    nodes = n + 1
    a = np.zeros((nodes, nodes))
    b = np.zeros((nodes, nodes))
    a[0, 0] = a[-1, -1] = 1.0  # natural: zero second derivative at both ends
    for i in range(1, nodes - 1):
        a[i, i - 1 : i + 2] = (1.0, 4.0, 1.0)
        b[i, i - 1 : i + 2] = (6.0, -12.0, 6.0)
    second = np.linalg.solve(a, b)  # second derivatives at the nodes, per unit node value
    q = np.arange(n * k + 1) / k
    p = np.minimum(np.floor(q).astype(int), n - 1)
    t = q - p
    interp = np.zeros((q.size, nodes))
    rows = np.arange(q.size)
    interp[rows, p] += 1.0 - t
    interp[rows, p + 1] += t
    interp += (((1.0 - t) ** 3 - (1.0 - t)) / 6.0)[:, None] * second[p]
    interp += ((t**3 - t) / 6.0)[:, None] * second[p + 1]
    cumulative = np.tril(np.ones((nodes, n)), -1)  # node e -> sum of pixels before edge e
    out = np.diff(interp @ cumulative, axis=0)
    out.setflags(write=False)
    return out


def aperture_weights(
    shape: tuple[int, int], cx: float, cy: float, r: float, method: str, k: int = 16
) -> np.ndarray:
    """Per-pixel weights w such that sum(w * image) is the flux within the circle.

    ``center``: 1 for pixels whose centre is inside; ``exact``: the pixel's area inside
    (uniform flux within a pixel); ``subpixel``: each pixel's flux is spread over k x k
    sub-pixels by :func:`subpixel_operator` and the sub-pixels' exact areas inside are summed
    (the weights are linear in the data, so the same for every image with this geometry)."""
    ny, nx = shape
    if method == "center":
        yy, xx = np.mgrid[0:ny, 0:nx]
        return ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(float)
    if method == "exact":
        return overlap_fractions(shape, cx, cy, r)
    if method != "subpixel":
        raise ValueError(f"unknown aperture method {method!r}; use center, exact or subpixel")
    # sub-pixel window covering the circle (the weights outside it are zero)
    x_lo, x_hi = max(int(np.floor(cx - r)) - 1, 0), min(int(np.ceil(cx + r)) + 2, nx)
    y_lo, y_hi = max(int(np.floor(cy - r)) - 1, 0), min(int(np.ceil(cy + r)) + 2, ny)
    sub = overlap_fractions(
        ((y_hi - y_lo) * k, (x_hi - x_lo) * k),
        (cx - x_lo + 0.5) * k - 0.5,
        (cy - y_lo + 0.5) * k - 0.5,
        r * k,
    )
    mx = subpixel_operator(nx, k)[x_lo * k : x_hi * k]
    my = subpixel_operator(ny, k)[y_lo * k : y_hi * k]
    return my.T @ sub @ mx
