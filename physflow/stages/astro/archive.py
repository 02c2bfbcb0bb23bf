"""A survey archive: many simulated FITS images behind one URL, and the stages that make a
cutout training set from it (``astro.survey``, ``astro.cutout_sample``).

``publish_survey(root)`` writes ``field_0000.fits ...`` and ``index.json`` (per image: name,
content digest, true star positions and fluxes) to any fsspec location; ``python -m
physflow.stages.astro survey ROOT`` does the same from a shell. The stages then read it like a
remote archive: through fsspec, with bounded retries, every file checked against its digest.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_range
from . import fitsvalue, remote
from .cutouts import extract
from .fitsio import WriteFitsConfig, write_fits
from .fitsvalue import FitsImage
from .simulate import SimulateConfig, simulate

FORMAT = "physflow.astro.survey.v1"


def publish_survey(
    root: str,
    n_images: int = 16,
    *,
    seed: int = 0,
    sim: SimulateConfig | None = None,
    write: WriteFitsConfig | None = None,
) -> str:
    """Simulate ``n_images`` fields (field j from the generator seeded with [seed, j]), write
    them as FITS files under ``root`` (an fsspec URL or a directory) plus ``index.json``, and
    return the index's URL. Files already there with the right content are left alone."""
    sim = sim or SimulateConfig(nx=256, ny=256, n_stars=8, min_separation=40.0)
    write = write or WriteFitsConfig()
    fs, base = remote.open_fs(root)
    fs.makedirs(base, exist_ok=True)
    images = []
    for j in range(n_images):
        out = simulate.func(sim, rng=np.random.default_rng([seed, j]))
        blob = write_fits.func(write, out["image"], out["wcs"])["fits"]
        name = f"field_{j:04d}.fits"
        path = f"{base.rstrip('/')}/{name}"
        if not fs.exists(path) or pf.digest(fs.cat_file(path)) != pf.digest(blob):
            fs.pipe_file(path, blob)
        truth = {k: [float(v) for v in np.asarray(out["truth"][k])] for k in out["truth"]}
        images.append({"name": name, "digest": pf.digest(blob), "stars": truth})
    index = {"format": FORMAT, "seed": seed, "images": images}
    fs.pipe_file(f"{base.rstrip('/')}/index.json", json.dumps(index, indent=1).encode())
    return f"{root.rstrip('/')}/index.json"


class SurveyConfig(pf.Config):
    #: URL of the survey's index.json (a path or fsspec URL, e.g. faulty::file:///data/index.json;
    #: ``${VAR}`` is expanded from the environment when read, and stays out of the keys).
    index: str
    #: Content digest of index.json; empty: pinned when the config is built, from two reads that
    #: agree (the index is small).
    digest: str = ""
    retries: Annotated[int, msgspec.Meta(ge=0)] = 3

    def __post_init__(self) -> None:
        check_range(self, "retries", ge=0)
        if not self.digest:
            try:
                pinned = agreed_digest(self.index, self.retries)
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f"SurveyConfig.index: cannot read {self.index!r} ({exc}); publish the "
                    "survey first (python -m physflow.stages.astro survey ROOT) or fix the URL"
                ) from None
            msgspec.structs.force_setattr(self, "digest", pinned)


def agreed_digest(url: str, retries: int) -> str:
    """The digest two reads of ``url`` agree on (a single read over a faulty link proves
    nothing: an altered byte would be pinned)."""
    seen: set[str] = set()
    for _ in range(retries + 2):
        d = pf.digest(remote.fetch_verified(url, retries=retries, validate=_check_index))
        if d in seen:
            return d
        seen.add(d)
    raise remote.FetchError(f"{url}: no two reads agreed in {retries + 2} reads")


def _check_index(blob: bytes) -> None:
    try:
        index = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a survey index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"not a survey index (format is not {FORMAT!r})")


@pf.stage(version="1", deps=[remote.fetch_verified, _check_index, FORMAT])
def survey(cfg: SurveyConfig) -> dict[str, Any]:
    """The index, pinned by digest: image URLs (resolved against the index's location), their
    content digests, and per image the true star positions (pixels, sky) and fluxes."""
    blob = remote.fetch_verified(cfg.index, cfg.digest, retries=cfg.retries, validate=_check_index)
    index = json.loads(blob)
    where = cfg.index.rsplit("/", 1)[0] if "/" in cfg.index else "."
    images = index["images"]
    return {
        "urls": [f"{where}/{im['name']}" for im in images],
        "digests": [im["digest"] for im in images],
        "stars": [
            {k: np.asarray(v, dtype=np.float64) for k, v in im["stars"].items()} for im in images
        ],
    }


def fetch_image(url: str, digest: str, retries: int) -> FitsImage:
    """One survey image, read intact (memoised by the sample stage: fetched once per store)."""
    blob = remote.fetch_verified(url, digest, retries=retries)
    return fitsvalue.from_fits_bytes(blob, name=url)


fetch_image.__physflow_deps__ = (  # type: ignore[attr-defined]
    remote.fetch_verified,
    fitsvalue.from_fits_bytes,
    fitsvalue.canonical_order,
)


class CutoutSampleConfig(pf.Config):
    #: Which survey image and which of its stars (the dataset varies both).
    image: Annotated[int, msgspec.Meta(ge=0)] = 0
    star: Annotated[int, msgspec.Meta(ge=0)] = 0
    size: Annotated[int, msgspec.Meta(gt=0)] = 32
    retries: Annotated[int, msgspec.Meta(ge=0)] = 3

    def __post_init__(self) -> None:
        for name in ("image", "star", "retries"):
            check_range(self, name, ge=0)
        check_range(self, "size", gt=0)


@pf.stage(version="1", outputs=["cutout", "flux", "offset"], deps=[fetch_image, extract])
def cutout_sample(cfg: CutoutSampleConfig, survey: dict, *, ctx: pf.StageContext) -> dict:
    """One training sample: a float32 stamp (physical counts) of star ``star`` of image
    ``image``, its true flux and its sub-pixel offset from the stamp centre. The image is
    fetched through ``ctx.memo``: once per store, then read (verified) from the store."""
    n = len(survey["urls"])
    if cfg.image >= n:
        raise ValueError(f"cutout_sample: image {cfg.image}, but the survey has {n} images")
    stars = survey["stars"][cfg.image]
    if cfg.star >= len(stars["x"]):
        raise ValueError(
            f"cutout_sample: star {cfg.star}, but image {cfg.image} has {len(stars['x'])} stars"
        )
    image = ctx.memo(fetch_image, survey["urls"][cfg.image], survey["digests"][cfg.image],
                     cfg.retries)  # fmt: skip
    x, y = stars["x"][cfg.star : cfg.star + 1], stars["y"][cfg.star : cfg.star + 1]
    stamps, x0, y0 = extract(image, x, y, cfg.size, 0.0)
    offset = np.array([x[0] - x0[0], y[0] - y0[0]], dtype=np.float32) - cfg.size // 2
    return {
        "cutout": stamps[0].astype(np.float32),
        "flux": np.float32(stars["flux"][cfg.star]),
        "offset": offset,
    }
