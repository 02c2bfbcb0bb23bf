"""``astro.catalog``: measured against true fluxes, one row per star, as an xarray Dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

import physflow as pf

from . import psf as psf_mod


def enclosed_fraction(info: dict[str, Any], radius: float) -> float:
    """Fraction of a star's flux inside the aperture, from the PSF the image was made with."""
    if info.get("psf") == "moffat":
        return float(psf_mod.moffat_enclosed(radius, info["alpha"], info["beta"]))
    return float(psf_mod.gaussian_enclosed(radius, info["sigma"]))


@pf.stage(
    version="1",
    deps=[enclosed_fraction, psf_mod.gaussian_enclosed, psf_mod.moffat_enclosed],
)
def catalog(phot: dict, truth: dict, info: dict) -> Any:
    """Dimension ``star``: true position and flux, the flux the aperture should hold
    (``flux_expected`` = flux x enclosed fraction of the PSF), the measurement and its error,
    ``pull`` = (measured - expected) / error, the aperture-corrected flux and the background.
    Rows are in the order of ``truth``; ``phot`` must come from cutouts of those targets."""
    import xarray as xr

    n = len(np.asarray(truth["x"]))
    flux = np.asarray(phot["flux"], dtype=np.float64)
    if flux.size != n:
        raise ValueError(
            f"catalog: photometry has {flux.size} rows but truth has {n} stars; wire the "
            "cutouts' targets to the same truth"
        )
    fraction = enclosed_fraction(info, float(phot["radius"]))
    expected = np.asarray(truth["flux"], dtype=np.float64) * fraction
    err = np.asarray(phot["flux_err"], dtype=np.float64)
    star = np.arange(n)
    columns = {
        "x_true": truth["x"],
        "y_true": truth["y"],
        "ra": truth["ra"],
        "dec": truth["dec"],
        "flux_true": truth["flux"],
        "flux_expected": expected,
        "flux": flux,
        "flux_err": err,
        "pull": (flux - expected) / err,
        "flux_corrected": flux / fraction,
        "xc": phot["xc"],
        "yc": phot["yc"],
        "bkg": phot["bkg"],
        "bkg_var": phot["bkg_var"],
        "ok": phot["ok"],
    }
    ds = xr.Dataset({k: ("star", np.asarray(v)) for k, v in columns.items()}, coords={"star": star})
    ds.attrs.update(
        {
            "aperture_radius": float(phot["radius"]),
            "enclosed_fraction": fraction,
            "psf": str(info.get("psf")),
            "sky": float(info.get("sky", np.nan)),
        }
    )
    return ds


def to_table(ds: Any) -> Any:
    """The catalog as an ``astropy.table.Table`` (one column per variable, attrs as meta)."""
    from astropy.table import Table

    table = Table({name: np.asarray(ds[name].values) for name in ds.data_vars})
    table.meta.update(dict(ds.attrs))
    return table
