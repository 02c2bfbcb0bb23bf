"""``astro.simulate``: a star field -- flat sky, stars with a Gaussian or Moffat PSF at known
positions and fluxes (integrated over pixels), Poisson noise, and a TAN WCS."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_pairs, check_range
from . import psf as psf_mod
from .wcs import pixel_to_sky, tan_cards

PsfKind = Literal["gaussian", "moffat"]


class SimulateConfig(pf.Config):
    nx: Annotated[int, msgspec.Meta(gt=0)] = 512
    ny: Annotated[int, msgspec.Meta(gt=0)] = 512
    #: Sky background, counts per pixel (the Poisson mean).
    sky: Annotated[float, msgspec.Meta(ge=0.0)] = 100.0
    n_stars: Annotated[int, msgspec.Meta(ge=0)] = 20
    #: Total fluxes (counts) are drawn log-uniformly in [flux_min, flux_max] ...
    flux_min: Annotated[float, msgspec.Meta(gt=0.0)] = 2.0e4
    flux_max: Annotated[float, msgspec.Meta(gt=0.0)] = 2.0e5
    #: ... unless given explicitly: [[x, y], ...] (0-based pixels) and one flux per star.
    positions: list[list[float]] | None = None
    fluxes: list[float] | None = None
    #: Random stars keep this distance (pixels) from the edges and from each other.
    margin: Annotated[float, msgspec.Meta(ge=0.0)] = 24.0
    min_separation: Annotated[float, msgspec.Meta(ge=0.0)] = 40.0
    psf: PsfKind = "gaussian"
    #: Gaussian PSF sigma (pixels).
    sigma: Annotated[float, msgspec.Meta(gt=0.0)] = 2.5
    #: Moffat PSF (1 + r^2/alpha^2)^-beta.
    moffat_alpha: Annotated[float, msgspec.Meta(gt=0.0)] = 3.0
    moffat_beta: Annotated[float, msgspec.Meta(gt=1.0)] = 3.5
    #: Fraction of a star's flux allowed outside the box it is rendered in.
    tail: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 1e-7
    noise: bool = True
    ra_deg: Annotated[float, msgspec.Meta(ge=0.0, lt=360.0)] = 150.1
    dec_deg: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] = 2.2
    pixel_scale_arcsec: Annotated[float, msgspec.Meta(gt=0.0)] = 0.2
    rotation_deg: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self, "psf", PsfKind)
        for name in ("nx", "ny", "flux_min", "flux_max", "sigma", "moffat_alpha"):
            check_range(self, name, gt=0)
        for name in ("sky", "margin", "min_separation", "n_stars"):
            check_range(self, name, ge=0)
        check_range(self, "moffat_beta", gt=1.0)
        check_range(self, "tail", gt=0.0, lt=1.0)
        check_range(self, "dec_deg", ge=-90.0, le=90.0)
        check_pairs(self, "positions")
        if self.flux_max < self.flux_min:
            raise ValueError(
                f"SimulateConfig.flux_max = {self.flux_max} must be >= flux_min = {self.flux_min}"
            )
        if (self.fluxes is None) != (self.positions is None) or (
            self.positions is not None and len(self.positions) != len(self.fluxes or ())
        ):
            raise ValueError(
                "SimulateConfig.positions and fluxes go together: give both, one flux per "
                "position (or neither, for n_stars random stars)"
            )


def draw_stars(cfg: SimulateConfig, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Positions and fluxes: the configured ones, or random ones (rejection sampling keeps
    ``min_separation`` between stars so apertures and annuli are not crowded)."""
    if cfg.positions is not None:
        xy = np.asarray(cfg.positions, dtype=np.float64).reshape(-1, 2)
        return xy[:, 0].copy(), xy[:, 1].copy(), np.asarray(cfg.fluxes, dtype=np.float64)
    lo_x, hi_x = cfg.margin, cfg.nx - 1 - cfg.margin
    lo_y, hi_y = cfg.margin, cfg.ny - 1 - cfg.margin
    if hi_x <= lo_x or hi_y <= lo_y:
        raise ValueError(
            f"SimulateConfig.margin = {cfg.margin} leaves no room in a {cfg.nx}x{cfg.ny} image"
        )
    xs: list[float] = []
    ys: list[float] = []
    tries = 0
    while len(xs) < cfg.n_stars:
        tries += 1
        if tries > 1000 * max(cfg.n_stars, 1):
            raise ValueError(
                f"SimulateConfig: cannot place {cfg.n_stars} stars {cfg.min_separation} px "
                f"apart in a {cfg.nx}x{cfg.ny} image; lower n_stars or min_separation"
            )
        x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        if all(math.hypot(x - a, y - b) >= cfg.min_separation for a, b in zip(xs, ys)):
            xs.append(x)
            ys.append(y)
    log_f = rng.uniform(math.log(cfg.flux_min), math.log(cfg.flux_max), size=cfg.n_stars)
    return np.array(xs), np.array(ys), np.exp(log_f)


def render(cfg: SimulateConfig, xs: np.ndarray, ys: np.ndarray, fluxes: np.ndarray) -> np.ndarray:
    """Noise-free expected counts: sky + every star integrated over pixels."""
    image = np.full((cfg.ny, cfg.nx), float(cfg.sky))
    half = psf_mod.stamp_radius(cfg.psf, cfg.sigma, cfg.moffat_alpha, cfg.moffat_beta, cfg.tail)
    for x, y, flux in zip(xs, ys, fluxes):
        x0, x1 = max(round(x) - half, 0), min(round(x) + half + 1, cfg.nx)
        y0, y1 = max(round(y) - half, 0), min(round(y) + half + 1, cfg.ny)
        if x1 <= x0 or y1 <= y0:
            continue
        if cfg.psf == "gaussian":
            stamp = psf_mod.gaussian_stamp(x, y, cfg.sigma, x0, y0, x1 - x0, y1 - y0)
        else:
            stamp = psf_mod.moffat_stamp(
                x, y, cfg.moffat_alpha, cfg.moffat_beta, x0, y0, x1 - x0, y1 - y0
            )
        image[y0:y1, x0:x1] += flux * stamp
    return image


def psf_info(cfg: SimulateConfig) -> dict[str, Any]:
    info: dict[str, Any] = {"psf": cfg.psf, "sky": float(cfg.sky), "noise": cfg.noise}
    if cfg.psf == "gaussian":
        info["sigma"] = float(cfg.sigma)
    else:
        info["alpha"] = float(cfg.moffat_alpha)
        info["beta"] = float(cfg.moffat_beta)
    return info


@pf.stage(
    version="1",
    outputs=["image", "truth", "wcs", "info"],
    deps=[
        draw_stars,
        render,
        psf_info,
        psf_mod.gaussian_stamp,
        psf_mod.gaussian_pixel_fractions,
        psf_mod._erf,
        psf_mod.moffat_stamp,
        psf_mod.MOFFAT_ORDER,
        psf_mod.stamp_radius,
        tan_cards,
        pixel_to_sky,
    ],
)
def simulate(cfg: SimulateConfig, *, rng: np.random.Generator) -> dict[str, Any]:
    """Expected counts = sky + stars; with ``noise`` each pixel is a Poisson draw of that.
    ``truth`` holds the stars (x, y 0-based pixels; ra, dec through the WCS; total flux);
    ``wcs`` the TAN header cards (reference pixel at the image centre)."""
    xs, ys, fluxes = draw_stars(cfg, rng)
    expected = render(cfg, xs, ys, fluxes)
    image = rng.poisson(expected).astype(np.float64) if cfg.noise else expected
    wcs = tan_cards(
        cfg.ra_deg,
        cfg.dec_deg,
        (cfg.nx - 1) / 2.0,
        (cfg.ny - 1) / 2.0,
        cfg.pixel_scale_arcsec,
        cfg.rotation_deg,
    )
    ra, dec = pixel_to_sky(wcs, xs, ys) if xs.size else (xs.copy(), ys.copy())
    truth = {"x": xs, "y": ys, "flux": fluxes, "ra": ra, "dec": dec}
    return {"image": image, "truth": truth, "wcs": wcs, "info": psf_info(cfg)}
