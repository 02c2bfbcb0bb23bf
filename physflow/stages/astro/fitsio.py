"""``astro.write_fits`` (image -> FITS file bytes, int16 with BSCALE/BZERO or float32) and
``astro.read_fits`` (a FITS file, local or remote, entering keys by its content digest)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from . import fitsvalue, remote
from .fitsvalue import FitsImage, exact_float, make_image, to_fits_bytes

StoredType = Literal["int16", "float32"]


class WriteFitsConfig(pf.Config):
    #: int16 (scaled by BSCALE/BZERO) or float32.
    dtype: StoredType = "int16"
    #: int16 scaling, physical = bzero + bscale * stored; null = fit the data's range.
    #: The defaults (1, 32768) store counts 0..65535 exactly (the unsigned-16 convention).
    bscale: float | None = 1.0
    bzero: float | None = 32768.0
    bunit: str = "count"
    object: str = "simulated field"
    #: Add CHECKSUM/DATASUM cards to the file (they are not part of the image value).
    checksum: bool = False
    #: Extra header cards, keyword -> value.
    cards: dict[str, str | int | float | bool] = {}

    def __post_init__(self) -> None:
        check_choice(self, "dtype", StoredType)
        check_range(self, "bscale", gt=0.0)
        if (self.bscale is None) != (self.bzero is None):
            raise ValueError(
                "WriteFitsConfig.bscale and bzero: set both (fixed scaling) or both to null "
                "(scaling fitted to the data's range)"
            )
        for key in self.cards:
            if len(key) > 8 or not key.replace("-", "").replace("_", "").isalnum():
                raise ValueError(
                    f"WriteFitsConfig.cards: {key!r} is not a FITS keyword (1-8 characters of "
                    "A-Z, 0-9, '-' or '_')"
                )


def quantise(
    values: np.ndarray, bscale: float | None, bzero: float | None
) -> tuple[np.ndarray, float, float]:
    """int16 stored values with physical = bzero + bscale * stored (rounded to nearest, ties to
    even). ``bscale``/``bzero`` None: fit them to the data's finite range."""
    if bscale is None or bzero is None:
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        bzero = exact_float((lo + hi) / 2.0)
        bscale = exact_float((hi - lo) / 65534.0) if hi > lo else 1.0
        while np.rint((hi - bzero) / bscale) > 32767 or np.rint((lo - bzero) / bscale) < -32768:
            bscale = exact_float(bscale * (1 + 1e-9))
    bscale, bzero = exact_float(bscale), exact_float(bzero)
    if not np.all(np.isfinite(values)):
        raise ValueError("write_fits: the image has NaN/inf values, which int16 cannot hold")
    stored = np.rint((values - bzero) / bscale)
    lo, hi = float(stored.min()), float(stored.max())
    if lo < -32768 or hi > 32767:
        raise ValueError(
            f"write_fits: values {values.min():g}..{values.max():g} do not fit int16 with "
            f"bscale={bscale}, bzero={bzero}; set bscale: null and bzero: null to fit the "
            "range, or use dtype: float32"
        )
    return stored.astype(np.int16), bscale, bzero


def header_cards(cfg: WriteFitsConfig, wcs: Any) -> list[tuple[str, Any, str]]:
    cards: list[tuple[str, Any, str]] = [
        ("BUNIT", cfg.bunit, "physical unit of the array values"),
        ("OBJECT", cfg.object, ""),
        ("ORIGIN", "physflow astro", ""),
    ]
    cards += [tuple(card) for card in (wcs or ())]
    cards += [(k.upper(), v, "") for k, v in cfg.cards.items()]
    return cards


@pf.stage(
    version="1",
    outputs=["image", "fits"],
    deps=[
        quantise,
        header_cards,
        make_image,
        to_fits_bytes,
        fitsvalue.as_written,
        fitsvalue.canonical_order,
        fitsvalue.VOLATILE_CARDS,
        fitsvalue.STRUCTURAL_CARDS,
        fitsvalue.FitsImage,
    ],
)
def write_fits(cfg: WriteFitsConfig, data: np.ndarray, wcs: Any = None) -> dict[str, Any]:
    """``image`` is the FitsImage value (exactly what the file holds: stored array, scaling,
    canonical cards); ``fits`` the file's bytes (write them anywhere: it is a FITS file)."""
    values = np.asarray(data, dtype=np.float64)
    if cfg.dtype == "int16":
        stored, bscale, bzero = quantise(values, cfg.bscale, cfg.bzero)
        image = make_image(stored, header_cards(cfg, wcs), bscale, bzero)
    else:
        image = make_image(values.astype(np.float32), header_cards(cfg, wcs))
    return {"image": image, "fits": to_fits_bytes(image, checksum=cfg.checksum)}


class ReadFitsConfig(pf.Config):
    #: A local path or an fsspec URL (s3://..., memory://..., faulty::file://...). ``${VAR}`` is
    #: expanded from the environment when the file is read, so it stays out of the keys.
    url: str
    #: Content digest of the file's bytes (``pf.digest(bytes)``). Empty for a local file: filled
    #: from the file when the config is built. Required for remote URLs (pin it).
    digest: str = ""
    hdu: Annotated[int, msgspec.Meta(ge=0)] = 0
    retries: Annotated[int, msgspec.Meta(ge=0)] = 3
    backoff_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0

    def __post_init__(self) -> None:
        check_range(self, "hdu", ge=0)
        check_range(self, "retries", ge=0)
        if self.digest and not self.digest.startswith("b3:"):
            raise ValueError(
                f"ReadFitsConfig.digest = {self.digest!r} is not a physflow content digest "
                "('b3:' + 64 hex digits, as pf.digest(file_bytes) gives)"
            )
        if not self.digest:
            msgspec.structs.force_setattr(self, "digest", pin_digest(self.url))


def pin_digest(url: str) -> str:
    """The content digest of a local file (what ``ReadFitsConfig.digest`` pins)."""
    url = remote.expand(url)
    if remote.is_remote(url) and not url.startswith("file://"):
        raise ValueError(
            f"ReadFitsConfig.digest is required for the remote URL {url!r}: pin the file's "
            "content digest (physflow.stages.astro.file_digest(url) computes it) so that a "
            "changed, truncated or altered remote file is detected and never used"
        )
    path = Path(url.removeprefix("file://"))
    try:
        return pf.digest(path.read_bytes())
    except OSError as exc:
        raise ValueError(
            f"ReadFitsConfig.url: cannot read {str(path)!r} ({exc.strerror}); give an existing "
            "FITS file (relative paths are relative to the working directory)"
        ) from None


def file_digest(url: str, retries: int = 3) -> str:
    """Content digest of a complete FITS file (local or remote), to pin in ReadFitsConfig.

    Over an unreliable channel one read proves nothing (an altered byte still parses), so the
    digest is taken when two reads agree, within ``retries + 2`` reads."""
    seen: set[str] = set()
    log: list[str] = []
    for _ in range(retries + 2):
        blob = remote.fetch_verified(
            url, retries=retries, validate=fitsvalue.from_fits_bytes, log=log
        )
        d = pf.digest(blob)
        if d in seen:
            return d
        seen.add(d)
    raise remote.FetchError(f"{url}: no two reads agreed in {retries + 2} reads")


@pf.stage(
    version="1",
    deps=[remote.fetch_verified, fitsvalue.from_fits_bytes, fitsvalue.canonical_order],
)
def read_fits(cfg: ReadFitsConfig) -> FitsImage:
    """The file's image HDU as a FitsImage. The node's key holds the file's content digest
    (pinned in the config), and so does every key downstream: a moved or touched file changes
    nothing downstream (nothing at all when the URL's location is a ``${VAR}``), a changed byte
    changes everything. Bytes whose digest differs from the
    pin are retried ``retries`` times and never parsed."""
    blob = remote.fetch_verified(cfg.url, cfg.digest, retries=cfg.retries, backoff_s=cfg.backoff_s)
    return fitsvalue.from_fits_bytes(blob, hdu=cfg.hdu, name=cfg.url)
