"""``astro.cutouts``: square stamps around targets given by pixel or by sky coordinate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_pairs, check_range
from .fitsvalue import FitsImage, from_fits_bytes
from .wcs import pixel_to_sky, sky_to_pixel, wcs_from_cards

Frame = Literal["sky", "pixel"]


class Cutouts(msgspec.Struct, frozen=True, eq=False):
    """n stamps of size x size (physical values; ``fill`` outside the image). Stamp k's pixel
    [0, 0] is pixel (x0[k], y0[k]) of the image; the target is at (x[k], y[k]) in the image,
    (x[k] - x0[k], y[k] - y0[k]) in the stamp. ra/dec are NaN when the image has no WCS."""

    data: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    bunit: str = ""

    def __len__(self) -> int:
        return int(self.data.shape[0])


class CutoutsConfig(pf.Config):
    #: Side of each stamp (pixels); the target lies in the central pixel (index size // 2).
    size: Annotated[int, msgspec.Meta(gt=0)] = 41
    #: How targets are given: sky (ra, dec in degrees, through the image's WCS) or pixel
    #: (x, y, 0-based).
    frame: Frame = "sky"
    #: Targets as [[a, b], ...] in ``frame``; null = take them from the ``targets`` input.
    positions: list[list[float]] | None = None
    #: Value of stamp pixels outside the image.
    fill: float = float("nan")

    def __post_init__(self) -> None:
        check_choice(self, "frame", Frame)
        check_range(self, "size", gt=0)
        check_pairs(self, "positions")


def target_coordinates(cfg: CutoutsConfig, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) coordinates of every target in ``cfg.frame``."""
    if cfg.positions is not None:
        pairs = np.asarray(cfg.positions, dtype=np.float64).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]
    if targets is None:
        raise ValueError(
            "cutouts: no targets; set config positions: [[a, b], ...] or connect the "
            "'targets' input (e.g. targets: simulate.truth)"
        )
    names = ("ra", "dec") if cfg.frame == "sky" else ("x", "y")
    missing = [n for n in names if n not in targets]
    if missing:
        raise ValueError(
            f"cutouts: frame {cfg.frame!r} needs targets with {names}, the input has "
            f"{sorted(targets)}; change frame or the targets"
        )
    return (
        np.asarray(targets[names[0]], dtype=np.float64).ravel(),
        np.asarray(targets[names[1]], dtype=np.float64).ravel(),
    )


def extract(
    image: FitsImage, xs: np.ndarray, ys: np.ndarray, size: int, fill: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stamps of physical values centred on the pixels nearest (xs, ys), padded with ``fill``
    past the edges. Only the stamps are scaled (``bzero + bscale * stored`` in float64)."""
    raw = image.data
    ny, nx = raw.shape
    dtype = np.float64 if image.scaled else np.result_type(raw.dtype, np.float32)
    out = np.full((xs.size, size, size), fill, dtype=dtype)
    x0 = np.floor(xs + 0.5).astype(np.int64) - size // 2
    y0 = np.floor(ys + 0.5).astype(np.int64) - size // 2
    for k in range(xs.size):
        ax, bx = max(x0[k], 0), min(x0[k] + size, nx)
        ay, by = max(y0[k], 0), min(y0[k] + size, ny)
        if ax < bx and ay < by:
            block = raw[ay:by, ax:bx]
            if image.scaled:
                block = block.astype(np.float64) * image.bscale + image.bzero
            out[k, ay - y0[k] : by - y0[k], ax - x0[k] : bx - x0[k]] = block
    return out, x0, y0


@pf.stage(
    version="1",
    deps=[
        target_coordinates,
        extract,
        from_fits_bytes,
        sky_to_pixel,
        pixel_to_sky,
        wcs_from_cards,
        Cutouts,
    ],
)
def cutouts(cfg: CutoutsConfig, image: FitsImage | bytes, targets: Any = None) -> Cutouts:
    """Stamps of the image's physical values (BSCALE/BZERO applied exactly) around each target.
    Sky targets go through the image's own WCS cards to pixels. ``image`` is a FitsImage or the
    bytes of a FITS file."""
    if isinstance(image, bytes | bytearray | memoryview):
        image = from_fits_bytes(bytes(image), name="cutouts input 'image'")
    if image.data.ndim != 2:
        raise ValueError(f"cutouts: the image is {image.data.ndim}-D; cutouts need a 2-D image")
    a, b = target_coordinates(cfg, targets)
    has_wcs = image.get("CTYPE1") is not None
    if cfg.frame == "sky":
        xs, ys = sky_to_pixel(image.cards, a, b)
        ra, dec = a, b
    else:
        xs, ys = a, b
        if has_wcs:
            ra, dec = pixel_to_sky(image.cards, xs, ys)
        else:
            ra = dec = np.full(xs.shape, np.nan)
    data, x0, y0 = extract(image, xs, ys, cfg.size, cfg.fill)
    return Cutouts(
        data=data,
        x0=x0,
        y0=y0,
        x=np.asarray(xs, dtype=np.float64),
        y=np.asarray(ys, dtype=np.float64),
        ra=np.asarray(ra, dtype=np.float64),
        dec=np.asarray(dec, dtype=np.float64),
        bunit=str(image.get("BUNIT", "")),
    )
