"""configs/astro_photometry.yaml loaded and run as users do; cache behaviour counted."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.stages.astro import FitsImage, from_fits_bytes, to_table

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "configs" / "astro_photometry.yaml"
chi2 = pytest.importorskip("scipy.stats").chi2


def test_photometry_spec_runs_and_reruns_for_free(store):
    p = pf.load_spec(SPEC)
    started: list[str] = []

    def progress(event):
        if event.kind == "started":
            started.append(event.node_id)

    first = p.run(store=store, progress=progress).raise_on_failure()
    assert sorted(started) == sorted(first.misses) == sorted(p.nodes)
    cat = first["catalog"]
    assert cat.sizes["star"] == p.nodes["simulate"].config.n_stars and cat["ok"].values.all()
    s = float(np.sum(cat["pull"].values ** 2))  # measured vs expected: chi-square, 20 dof
    assert chi2.ppf(0.0005, 20) < s < chi2.ppf(0.9995, 20)
    image = first["write_fits.image"]
    assert isinstance(image, FitsImage) and image.data.dtype == np.int16
    assert image.get("BUNIT") == "count" and image.get("CTYPE1") == "RA---TAN"
    assert pf.digest(from_fits_bytes(first["write_fits.fits"])) == first.digest("write_fits.image")
    started.clear()
    again = pf.load_spec(SPEC).run(store=store, progress=progress)
    assert started == [] and again.misses == [] and len(again.hits) == 5
    # a photometry setting changes only photometry and catalog
    wider = pf.load_spec(SPEC, overrides={"photometry.radius": 7.5}).run(
        store=store, progress=progress
    )
    assert sorted(started) == ["catalog", "photometry"] == sorted(wider.misses)
    assert wider["catalog"].attrs["aperture_radius"] == 7.5


def test_catalog_converts_to_an_astropy_table(store):
    res = pf.load_spec(SPEC, overrides={"simulate.n_stars": 3}).run(store=store)
    table = to_table(res.raise_on_failure()["catalog"])
    assert len(table) == 3 and {"flux", "flux_true", "flux_expected", "pull"} <= set(table.colnames)
    assert table.meta["psf"] == "gaussian"


def test_float32_variant_and_fitted_scaling(store):
    f32 = pf.load_spec(SPEC, overrides={"write_fits.dtype": "float32"}).run(store=store)
    image = f32.raise_on_failure()["write_fits.image"]
    assert image.data.dtype == np.float32 and not image.scaled
    fitted = pf.load_spec(
        SPEC, overrides={"write_fits.bscale": None, "write_fits.bzero": None}
    ).run(store=store)
    scaled = fitted.raise_on_failure()["write_fits.image"]
    values = fitted["simulate.image"]
    # fitted to the range: every value within half a quantisation step
    assert np.max(np.abs(scaled.physical() - values)) <= scaled.bscale / 2 * (1 + 1e-9)
    assert scaled.data.min() >= -32768 and scaled.data.max() <= 32767
    astropy_fits = pytest.importorskip("astropy.io.fits")
    with astropy_fits.open(io.BytesIO(fitted["write_fits.fits"])) as hdul:
        assert hdul[0].header["BSCALE"] == scaled.bscale


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("psf: gaussian ", "psf: airy ", "psf"),
        ("dtype: int16 ", "dtype: int8 ", "dtype"),
        ("frame: sky ", "frame: galactic ", "frame"),
        ("annulus_inner: 12.0", "annulus_inner: 2.0", "annulus"),
        ("sigma: 2.5 ", "sigma: -1 ", "sigma"),
    ],
)
def test_bad_values_are_spec_errors_with_file_line_and_field(tmp_path, old, new, field):
    text = SPEC.read_text()
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new))
    with pytest.raises(pf.SpecError) as err:
        pf.load_spec(bad)
    message = str(err.value)
    assert "bad.yaml:" in message and field in message, message


def test_too_small_cutouts_for_the_annulus_fail_with_the_fix(store):
    res = pf.load_spec(SPEC, overrides={"cutouts.size": 21}).run(store=store)
    assert res.failed == ["photometry"]
    assert "size >= 39" in res.errors["photometry"]


@pytest.mark.slow
def test_processes_store_the_serial_bytes(tmp_path):
    p = pf.load_spec(SPEC, overrides={"simulate.n_stars": 4, "simulate.nx": 256})
    serial = p.run(store=pf.Store(tmp_path / "serial")).raise_on_failure()
    procs = p.run(store=pf.Store(tmp_path / "procs"), executor="processes", workers=2)
    assert sorted(procs.raise_on_failure().misses) == sorted(p.nodes)
    for ref in ("simulate.image", "write_fits.image", "write_fits.fits", "cutouts", "catalog"):
        assert procs.digest(ref) == serial.digest(ref), ref


def test_importing_the_pack_does_not_import_heavy_libraries():
    import subprocess

    code = (
        "import sys, physflow.stages.astro; "
        "print([m for m in ('astropy', 'torch', 'fsspec', 'xarray', 'dask', 'scipy') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
