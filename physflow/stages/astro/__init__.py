"""Astronomy stage pack: a survey-style image pipeline (see docs/astro.md).

``astro.simulate`` -> ``astro.write_fits`` -> ``astro.cutouts`` -> ``astro.photometry`` ->
``astro.catalog``, plus ``astro.read_fits`` for FITS files given as inputs (local or remote,
keyed by content), and ``astro.survey`` -> ``astro.cutout_sample`` for a cutout training set
over a survey archive (``publish_survey``, ``prepare_cutouts``). FITS images are values
(:class:`FitsImage`). astropy is imported lazily.
"""

from __future__ import annotations

from .archive import (
    CutoutSampleConfig,
    SurveyConfig,
    cutout_sample,
    publish_survey,
    survey,
)
from .catalog import catalog, enclosed_fraction, to_table
from .cutouts import Cutouts, CutoutsConfig, cutouts
from .fitsio import (
    ReadFitsConfig,
    WriteFitsConfig,
    file_digest,
    read_fits,
    write_fits,
)
from .fitsvalue import (
    VOLATILE_CARDS,
    FitsFormatError,
    FitsImage,
    from_fits_bytes,
    make_image,
    to_fits_bytes,
)
from .loader import EpochStats, prepare_cutouts
from .photometry import PhotometryConfig, photometry
from .simulate import SimulateConfig, simulate


def photometry_pipeline(
    name: str = "astro_photometry",
    seed: int = 1,
    simulate_config: SimulateConfig | None = None,
    write_config: WriteFitsConfig | None = None,
    cutouts_config: CutoutsConfig | None = None,
    photometry_config: PhotometryConfig | None = None,
):
    """The five-stage pipeline of configs/astro_photometry.yaml as a :class:`physflow.Pipeline`."""
    import physflow as pf

    p = pf.Pipeline(name, seed=seed)
    p.add("simulate", simulate, simulate_config or SimulateConfig())
    p.add(
        "write_fits",
        write_fits,
        write_config or WriteFitsConfig(),
        data="simulate.image",
        wcs="simulate.wcs",
    )
    p.add(
        "cutouts",
        cutouts,
        cutouts_config or CutoutsConfig(),
        image="write_fits.image",
        targets="simulate.truth",
    )
    p.add("photometry", photometry, photometry_config or PhotometryConfig(), cutouts="cutouts")
    p.add("catalog", catalog, phot="photometry", truth="simulate.truth", info="simulate.info")
    return p


__all__ = [
    "VOLATILE_CARDS",
    "CutoutSampleConfig",
    "Cutouts",
    "CutoutsConfig",
    "EpochStats",
    "FitsFormatError",
    "FitsImage",
    "PhotometryConfig",
    "ReadFitsConfig",
    "SimulateConfig",
    "SurveyConfig",
    "WriteFitsConfig",
    "catalog",
    "cutout_sample",
    "cutouts",
    "enclosed_fraction",
    "file_digest",
    "from_fits_bytes",
    "make_image",
    "photometry",
    "photometry_pipeline",
    "prepare_cutouts",
    "publish_survey",
    "read_fits",
    "simulate",
    "survey",
    "to_fits_bytes",
    "to_table",
    "write_fits",
]
