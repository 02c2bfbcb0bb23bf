"""A gnomonic (TAN) world coordinate system as FITS header cards, and pixel <-> sky through
astropy.wcs. Pixel coordinates here are 0-based (numpy index [y, x]); FITS CRPIX is 1-based."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .fitsvalue import Card, as_written

WCS_KEYWORDS = (
    "WCSAXES",
    "CTYPE1",
    "CTYPE2",
    "CUNIT1",
    "CUNIT2",
    "CRVAL1",
    "CRVAL2",
    "CRPIX1",
    "CRPIX2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
    "RADESYS",
)


def tan_cards(
    ra_deg: float,
    dec_deg: float,
    crpix_x: float,
    crpix_y: float,
    scale_arcsec: float,
    rotation_deg: float = 0.0,
) -> tuple[Card, ...]:
    """TAN WCS cards: reference pixel (0-based ``crpix_x``, ``crpix_y``) at (ra, dec), pixel
    scale in arcsec, position angle of +y from north through east. East is left (CD1_1 < 0).
    Values are as written to a file (so the cards read back bit for bit)."""
    s = scale_arcsec / 3600.0
    c, n = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    cards = [
        ("WCSAXES", 2, "number of WCS axes"),
        ("CTYPE1", "RA---TAN", "gnomonic projection"),
        ("CTYPE2", "DEC--TAN", "gnomonic projection"),
        ("CUNIT1", "deg", ""),
        ("CUNIT2", "deg", ""),
        ("CRVAL1", float(ra_deg), "[deg] RA at the reference pixel"),
        ("CRVAL2", float(dec_deg), "[deg] Dec at the reference pixel"),
        ("CRPIX1", float(crpix_x) + 1.0, "reference pixel (1-based)"),
        ("CRPIX2", float(crpix_y) + 1.0, "reference pixel (1-based)"),
        ("CD1_1", -s * c, "[deg/pixel]"),
        ("CD1_2", s * n, "[deg/pixel]"),
        ("CD2_1", s * n, "[deg/pixel]"),
        ("CD2_2", s * c, "[deg/pixel]"),
        ("RADESYS", "ICRS", ""),
    ]
    return as_written(cards)


def wcs_from_cards(cards: Iterable[Card]) -> Any:
    """An ``astropy.wcs.WCS`` from header cards (only the WCS keywords are passed on)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header()
    for keyword, value, comment in cards:
        if keyword in WCS_KEYWORDS or keyword.startswith(("PC", "CDELT", "PV", "LONPOLE")):
            header[keyword] = (value, comment)
    if "CTYPE1" not in header:
        raise ValueError(
            "the image has no celestial WCS (no CTYPE1/CTYPE2 cards); sky coordinates need one. "
            "Use frame: pixel, or write the image with WCS cards"
        )
    return WCS(header, naxis=2)


def pixel_to_sky(cards: Iterable[Card], x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel (x, y) -> (ra, dec) in degrees."""
    ra, dec = wcs_from_cards(cards).all_pix2world(np.asarray(x), np.asarray(y), 0)
    return np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)


def sky_to_pixel(cards: Iterable[Card], ra: Any, dec: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees -> 0-based pixel (x, y)."""
    x, y = wcs_from_cards(cards).all_world2pix(np.asarray(ra), np.asarray(dec), 0, tolerance=1e-12)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
