"""FITS images as physflow values: ``FitsImage`` (stored array + canonical header cards).

A ``FitsImage`` is a msgspec Struct, so physflow stores it and digests every field: the stored
array (dtype, shape, bytes), ``bscale``/``bzero`` and the header cards. The cards are kept in a
canonical form so that two files meaning the same thing have the same digest:

* structural cards are not cards of the value but follow from its fields: SIMPLE, XTENSION,
  BITPIX, NAXIS, NAXISn, EXTEND, PCOUNT, GCOUNT (from ``data``), BSCALE and BZERO (fields);
* volatile cards that do not change the data's meaning are **excluded** (dropped on read, never
  stored, not in the digest): ``VOLATILE_CARDS`` = DATE, CHECKSUM, DATASUM;
* every other card is **included**: keyword (upper case), value and comment, in the order of
  a stable sort by keyword (repeated keywords such as HISTORY keep their relative order);
* values are as a FITS reader sees them after writing: floats are formatted by astropy's card
  writer and parsed back, so write -> read gives the same value bit for bit.

astropy is imported lazily (only to format and parse headers).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from typing import Any

import msgspec
import numpy as np

#: Cards that never enter a FitsImage (nor its digest): they change with every write.
VOLATILE_CARDS = ("DATE", "CHECKSUM", "DATASUM")
#: Cards that describe the array layout; they are derived from the value's fields.
STRUCTURAL_CARDS = (
    "SIMPLE",
    "XTENSION",
    "BITPIX",
    "NAXIS",
    "EXTEND",
    "PCOUNT",
    "GCOUNT",
    "BSCALE",
    "BZERO",
    "END",
)
#: numpy dtype (native order) <-> FITS BITPIX.
BITPIX = {"uint8": 8, "int16": 16, "int32": 32, "int64": 64, "float32": -32, "float64": -64}
BLOCK = 2880

CardValue = str | int | float | bool | complex | None
Card = tuple[str, CardValue, str]


class FitsFormatError(ValueError):
    """A byte string is not a FITS image this pack can read; the message says what is wrong."""


class FitsImage(msgspec.Struct, frozen=True, eq=False):
    """One image HDU: ``data`` as stored (BITPIX dtype, native byte order), the linear scaling
    to physical values (``physical = bzero + bscale * data``) and the canonical header cards."""

    data: np.ndarray
    cards: tuple[Card, ...] = ()
    bscale: float = 1.0
    bzero: float = 0.0

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        name = data.dtype.newbyteorder("=").name
        if name not in BITPIX:
            raise TypeError(
                f"FitsImage.data has dtype {data.dtype}; FITS images hold one of "
                f"{', '.join(BITPIX)}"
            )
        if not data.dtype.isnative or not data.flags.c_contiguous:
            data = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("="))
        msgspec.structs.force_setattr(self, "data", data)
        msgspec.structs.force_setattr(self, "cards", canonical_order(self.cards))
        msgspec.structs.force_setattr(self, "bscale", float(self.bscale))
        msgspec.structs.force_setattr(self, "bzero", float(self.bzero))

    @property
    def scaled(self) -> bool:
        return self.bscale != 1.0 or self.bzero != 0.0

    def physical(self) -> np.ndarray:
        """Physical values: ``bzero + bscale * data`` in float64 (FITS standard, the same
        arithmetic as cfitsio), or ``data`` itself when there is no scaling."""
        if not self.scaled:
            return self.data
        return self.data.astype(np.float64) * self.bscale + self.bzero

    def header(self) -> dict[str, CardValue]:
        """Keyword -> value of the included cards (the last one wins for repeated keywords)."""
        return {k: v for k, v, _ in self.cards if k not in ("HISTORY", "COMMENT", "")}

    def get(self, keyword: str, default: Any = None) -> Any:
        return self.header().get(keyword.upper(), default)


def canonical_order(cards: Iterable[Any]) -> tuple[Card, ...]:
    """Upper-case keywords, drop structural and volatile cards, stable-sort by keyword."""
    out: list[Card] = []
    for card in cards:
        if len(card) == 2:
            keyword, value, comment = card[0], card[1], ""
        else:
            keyword, value, comment = card
        keyword = str(keyword).upper().strip()
        if _excluded(keyword):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        out.append((keyword, value, str(comment)))
    return tuple(sorted(out, key=lambda c: c[0]))


def _excluded(keyword: str) -> bool:
    if keyword in VOLATILE_CARDS or keyword in STRUCTURAL_CARDS:
        return True
    return keyword.startswith("NAXIS") and keyword[5:].isdigit()


def _fits() -> Any:
    from astropy.io import fits

    return fits


def as_written(cards: Iterable[Any]) -> tuple[Card, ...]:
    """Cards as a reader sees them after they are written (floats formatted and parsed back)."""
    fits = _fits()
    header = fits.Header()
    for keyword, value, comment in canonical_order(cards):
        header.append((keyword, value, comment), end=True)
    return _cards_of(fits.Header.fromstring(header.tostring()))


def exact_float(value: float) -> float:
    """``value`` as it reads back from a FITS card (astropy writes at most 20 characters)."""
    return float(as_written([("X", float(value), "")])[0][1])


def _cards_of(header: Any) -> tuple[Card, ...]:
    undefined = _fits().card.Undefined
    cards = []
    for card in header.cards:
        value = card.value
        if isinstance(value, undefined):
            value = None
        cards.append((card.keyword, value, card.comment or ""))
    return canonical_order(cards)


def make_image(
    data: np.ndarray, cards: Iterable[Any] = (), bscale: float = 1.0, bzero: float = 0.0
) -> FitsImage:
    """A FitsImage whose cards and scaling are exactly what a FITS file of it reads back as."""
    return FitsImage(
        data=np.asarray(data),
        cards=as_written(cards),
        bscale=exact_float(bscale),
        bzero=exact_float(bzero),
    )


def to_fits_bytes(image: FitsImage, *, checksum: bool = False) -> bytes:
    """The image as a FITS file (one primary HDU). Deterministic: no DATE card; with
    ``checksum`` astropy adds CHECKSUM and DATASUM (functions of the content only)."""
    fits = _fits()
    data = image.data
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = BITPIX[data.dtype.name]
    header["NAXIS"] = data.ndim
    for axis, n in enumerate(reversed(data.shape), start=1):
        header[f"NAXIS{axis}"] = n
    header["EXTEND"] = True
    if image.scaled:
        header["BSCALE"] = image.bscale
        header["BZERO"] = image.bzero
    for keyword, value, comment in image.cards:
        header.append((keyword, value, comment), end=True)
    raw = data.astype(data.dtype.newbyteorder(">"), copy=False).tobytes()
    body = header.tostring().encode("ascii") + raw + b"\0" * (-len(raw) % BLOCK)
    if not checksum:
        return body
    with fits.open(io.BytesIO(body), do_not_scale_image_data=True) as hdul:
        out = io.BytesIO()
        hdul.writeto(out, checksum=True)
    return out.getvalue()


def from_fits_bytes(blob: bytes, *, hdu: int = 0, name: str = "<bytes>") -> FitsImage:
    """Parse an image HDU exactly: the stored array as written, BSCALE/BZERO as written (no
    rescaling, no float32 conversion), the canonical cards. Errors name ``name``."""
    fits = _fits()
    if len(blob) < BLOCK or len(blob) % BLOCK:
        raise FitsFormatError(
            f"{name}: {len(blob)} bytes is not a whole number of 2880-byte FITS blocks "
            "(truncated or not a FITS file)"
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(
                io.BytesIO(blob), do_not_scale_image_data=True, uint=False, memmap=False
            )
            if hdu >= len(hdul):
                raise FitsFormatError(f"{name}: has {len(hdul)} HDU(s), no HDU {hdu}")
            target = hdul[hdu]
            if not target.is_image or target.data is None:
                raise FitsFormatError(f"{name}: HDU {hdu} is not an image with data")
            _check_complete(blob, hdul, hdu, name, caught)
            header = target.header
            data = np.array(target.data, dtype=target.data.dtype.newbyteorder("="))
            hdul.close()
            return FitsImage(
                data=data,
                cards=_cards_of(header),
                bscale=float(header.get("BSCALE", 1.0)),
                bzero=float(header.get("BZERO", 0.0)),
            )
    except FitsFormatError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, VerifyError...
        raise FitsFormatError(f"{name}: not a readable FITS image ({exc})") from None


def _check_complete(blob: bytes, hdul: Any, hdu: int, name: str, caught: list) -> None:
    """astropy pads a short data block with a warning; a truncated file must be an error."""
    for warning in caught:
        if "truncated" in str(warning.message):
            raise FitsFormatError(f"{name}: truncated ({warning.message})")
    info = hdul.fileinfo(hdu)
    header = hdul[hdu].header
    count = int(np.prod([header[f"NAXIS{i}"] for i in range(1, header["NAXIS"] + 1)]))
    need = info["datLoc"] + count * abs(header["BITPIX"]) // 8
    if len(blob) < need:
        raise FitsFormatError(f"{name}: data ends after {len(blob)} bytes, {need} needed")


__all__ = [
    "BITPIX",
    "STRUCTURAL_CARDS",
    "VOLATILE_CARDS",
    "FitsFormatError",
    "FitsImage",
    "as_written",
    "canonical_order",
    "exact_float",
    "from_fits_bytes",
    "make_image",
    "to_fits_bytes",
]
