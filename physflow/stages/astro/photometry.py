"""``astro.photometry``: circular-aperture flux with a local background from an annulus."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from . import aperture as ap

Method = Literal["subpixel", "exact", "center"]
COLUMNS = ("flux", "flux_err", "bkg", "bkg_var", "bkg_n", "area", "xc", "yc", "ok")


class PhotometryConfig(pf.Config):
    #: Aperture radius (pixels).
    radius: Annotated[float, msgspec.Meta(gt=0.0)] = 5.0
    #: Background annulus radii (pixels); pixels lying wholly inside it are used.
    annulus_inner: Annotated[float, msgspec.Meta(gt=0.0)] = 12.0
    annulus_outer: Annotated[float, msgspec.Meta(gt=0.0)] = 18.0
    #: How pixels are weighted at the aperture's edge (see docs/astro.md).
    method: Method = "subpixel"
    #: Sub-pixels per pixel side for ``subpixel``.
    subsample: Annotated[int, msgspec.Meta(ge=1)] = 16
    #: Electrons per image unit (Poisson variance of a pixel = value / gain).
    gain: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0

    def __post_init__(self) -> None:
        check_choice(self, "method", Method)
        for name in ("radius", "annulus_inner", "annulus_outer", "gain"):
            check_range(self, name, gt=0.0)
        check_range(self, "subsample", ge=1)
        if not self.radius <= self.annulus_inner < self.annulus_outer:
            raise ValueError(
                f"PhotometryConfig: need radius <= annulus_inner < annulus_outer, got "
                f"{self.radius}, {self.annulus_inner}, {self.annulus_outer}"
            )


def annulus_mask(shape: tuple[int, int], cx: float, cy: float, r_in: float, r_out: float):
    """Pixels wholly inside the annulus (their four corners between the two radii)."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    dx = np.abs(xx - cx)
    dy = np.abs(yy - cy)
    near = np.hypot(np.maximum(dx - 0.5, 0.0), np.maximum(dy - 0.5, 0.0))
    far = np.hypot(dx + 0.5, dy + 0.5)
    return (near >= r_in) & (far <= r_out)


def measure_one(stamp: np.ndarray, cx: float, cy: float, cfg: PhotometryConfig) -> dict:
    """Flux = sum(w * (stamp - bkg)) with aperture weights w; bkg = mean of the annulus pixels;
    flux_err^2 = sum(w^2 * max(stamp, 0)) / gain + area^2 * bkg_var / n_bkg (Poisson)."""
    w = ap.aperture_weights(stamp.shape, cx, cy, cfg.radius, cfg.method, cfg.subsample)
    ring = annulus_mask(stamp.shape, cx, cy, cfg.annulus_inner, cfg.annulus_outer)
    sky = stamp[ring]
    used = w != 0
    ok = bool(np.all(np.isfinite(stamp[used])) and np.all(np.isfinite(sky)) and sky.size > 1)
    bkg = float(np.mean(sky)) if sky.size else float("nan")
    bkg_var = float(np.var(sky, ddof=1)) if sky.size > 1 else float("nan")
    values = np.where(used, stamp, 0.0)
    area = float(w.sum())
    net = values - bkg
    flux = float(np.sum(w * net))
    var = float(np.sum(w**2 * np.maximum(values, 0.0))) / cfg.gain
    var += area**2 * bkg_var / max(sky.size, 1)
    pos = np.maximum(w * net, 0.0)
    yy, xx = np.mgrid[0 : stamp.shape[0], 0 : stamp.shape[1]]
    total = pos.sum()
    xc = float((pos * xx).sum() / total) if total > 0 else float("nan")
    yc = float((pos * yy).sum() / total) if total > 0 else float("nan")
    return {
        "flux": flux if ok else float("nan"),
        "flux_err": float(np.sqrt(var)) if ok else float("nan"),
        "bkg": bkg,
        "bkg_var": bkg_var,
        "bkg_n": int(sky.size),
        "area": area,
        "xc": xc,
        "yc": yc,
        "ok": ok,
    }


@pf.stage(
    version="1",
    deps=[
        measure_one,
        annulus_mask,
        ap.aperture_weights,
        ap.overlap_fractions,
        ap.subpixel_operator.__wrapped__,
        ap._quadrant_area,
        ap._chord_integral,
        COLUMNS,
    ],
)
def photometry(cfg: PhotometryConfig, cutouts: Any) -> dict[str, Any]:
    """One row per cutout: flux, flux_err, bkg (mean per pixel), bkg_var (sample variance of the
    annulus pixels), bkg_n, area (sum of aperture weights), centroid (xc, yc in image pixels),
    ok (False when the aperture or annulus leaves the image). Plus the aperture radii.
    ``cutouts`` is a :class:`Cutouts` (annotated Any: physflow takes a Struct-annotated
    parameter for the config)."""
    size = cutouts.data.shape[-1] if len(cutouts) else 0
    need = 2 * math.ceil(cfg.annulus_outer + 1.0) + 1
    if len(cutouts) and size < need:
        raise ValueError(
            f"photometry: cutouts of {size} px cannot hold annulus_outer = "
            f"{cfg.annulus_outer} px; use cutouts size >= {need} (or a smaller annulus)"
        )
    rows = []
    for k in range(len(cutouts)):
        cx = float(cutouts.x[k] - cutouts.x0[k])
        cy = float(cutouts.y[k] - cutouts.y0[k])
        row = measure_one(np.asarray(cutouts.data[k], dtype=np.float64), cx, cy, cfg)
        row["xc"] += float(cutouts.x0[k])
        row["yc"] += float(cutouts.y0[k])
        rows.append(row)
    out: dict[str, Any] = {
        name: np.array([r[name] for r in rows], dtype=bool if name == "ok" else None)
        for name in COLUMNS
    }
    if not rows:
        out = {name: np.zeros(0) for name in COLUMNS}
    out["radius"] = float(cfg.radius)
    out["annulus"] = (float(cfg.annulus_inner), float(cfg.annulus_outer))
    return out
