"""Photometry and astrometry against closed forms: Gaussian and Moffat enclosed flux, the sky
level and its Poisson variance, exact aperture areas, and the TAN projection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from physflow.stages.astro import (
    CutoutsConfig,
    PhotometryConfig,
    SimulateConfig,
    WriteFitsConfig,
    photometry_pipeline,
)
from physflow.stages.astro.aperture import aperture_weights, overlap_fractions
from physflow.stages.astro.psf import gaussian_enclosed, moffat_enclosed
from physflow.stages.astro.wcs import pixel_to_sky, sky_to_pixel, tan_cards

chi2 = pytest.importorskip("scipy.stats").chi2

POSITIONS = [[60.3, 58.7], [140.81, 61.15], [59.5, 141.5], [141.02, 139.93], [100.4, 100.0]]
FLUXES = [5.0e4, 1.2e5, 8.0e4, 3.0e4, 2.0e5]


def run_field(store, *, noise: bool, psf: str = "gaussian", radius: float = 5.0, **sim):
    """A 200x200 field with five stars at fixed, sub-pixel positions, through every stage."""
    p = photometry_pipeline(
        simulate_config=SimulateConfig(
            nx=200, ny=200, positions=POSITIONS, fluxes=FLUXES, noise=noise, psf=psf, **sim
        ),
        write_config=WriteFitsConfig(dtype="float32") if not noise else WriteFitsConfig(),
        cutouts_config=CutoutsConfig(size=61),
        photometry_config=PhotometryConfig(radius=radius, annulus_inner=18, annulus_outer=28),
    )
    return p.run(store=store).raise_on_failure()


@pytest.mark.parametrize("n_sigma", [1.5, 2.0, 3.0])
def test_noise_free_gaussian_aperture_flux_matches_closed_form(store, n_sigma):
    sigma = 2.5
    res = run_field(store, noise=False, sigma=sigma, radius=n_sigma * sigma)
    cat = res["catalog"]
    fraction = 1 - math.exp(-((n_sigma * sigma) ** 2) / (2 * sigma**2))
    expected = np.array(FLUXES) * fraction
    # float32 storage of the image limits the agreement to ~1e-7 relative per pixel
    np.testing.assert_allclose(cat["flux"].values, expected, rtol=3e-4)
    np.testing.assert_allclose(cat["bkg"].values, 100.0, rtol=1e-6)
    assert cat.attrs["enclosed_fraction"] == pytest.approx(fraction, rel=1e-15)


def test_subpixel_weights_beat_plain_pixel_overlap():
    """The reference is exact only with a sub-pixel model: the plain overlap (uniform flux in a
    pixel) is off by ~1e-2 at r = 1.5 sigma, the spline reconstruction by ~1e-4."""
    from physflow.stages.astro.psf import gaussian_stamp

    n, sigma, cx, cy = 45, 2.5, 22.31, 21.77
    stamp = gaussian_stamp(cx, cy, sigma, 0, 0, n, n)
    r = 1.5 * sigma
    truth = gaussian_enclosed(r, sigma)
    err = {
        m: abs((aperture_weights((n, n), cx, cy, r, m) * stamp).sum() / truth - 1)
        for m in ("center", "exact", "subpixel")
    }
    assert err["subpixel"] < 3e-4 < 5e-3 < err["exact"]


def test_moffat_aperture_flux_matches_closed_form(store):
    res = run_field(store, noise=False, psf="moffat", radius=6.0, tail=1e-6)
    expected = np.array(FLUXES) * moffat_enclosed(6.0, 3.0, 3.5)
    np.testing.assert_allclose(res["catalog"]["flux"].values, expected, rtol=5e-5)


def test_noisy_flux_within_poisson_error_and_sky_variance_is_poisson(store):
    sky = 150.0
    res = run_field(store, noise=True, sky=sky)
    cat = res["catalog"]
    assert cat["ok"].values.all()
    # pulls (measured - expected) / predicted error: chi-square with 5 dof (99.9% interval)
    pulls = cat["pull"].values
    s = float(np.sum(pulls**2))
    assert chi2.ppf(0.0005, 5) < s < chi2.ppf(0.9995, 5), pulls
    # predicted error is the Poisson one: source + sky counts in the aperture
    area = math.pi * 5.0**2
    n_bkg = res["photometry"]["bkg_n"]
    predicted = np.sqrt(
        np.array(FLUXES) * gaussian_enclosed(5.0, 2.5) + sky * area + area**2 * sky / n_bkg
    )
    np.testing.assert_allclose(cat["flux_err"].values, predicted, rtol=0.05)
    # annulus mean: the sky within its standard error; annulus variance: Poisson (= mean)
    bkg, var = cat["bkg"].values, cat["bkg_var"].values
    assert np.all(np.abs(bkg - sky) < 4.5 * np.sqrt(sky / n_bkg))
    for v, n in zip(var, n_bkg):  # (n-1) s^2 / sky ~ chi2(n-1)
        assert chi2.ppf(0.0005, n - 1) < (n - 1) * v / sky < chi2.ppf(0.9995, n - 1)
    pooled = float(np.sum((n_bkg - 1) * var) / np.sum(n_bkg - 1))
    assert pooled == pytest.approx(sky, rel=5 * math.sqrt(2 / np.sum(n_bkg - 1)))


def test_exact_overlap_areas_against_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(5):
        cx, cy, r = 10 + rng.random(), 10 + rng.random(), 1 + 6 * rng.random()
        w = overlap_fractions((21, 21), cx, cy, r)
        assert w.sum() == pytest.approx(math.pi * r * r, rel=1e-12)
        n = 400  # brute force: a 400x400 grid of points in each of some boundary pixels
        s = (np.arange(n) + 0.5) / n - 0.5
        edge = np.argwhere((w > 0.05) & (w < 0.95))[:4]
        for i, j in edge:
            inside = ((j + s[None, :] - cx) ** 2 + (i + s[:, None] - cy) ** 2 < r * r).mean()
            assert w[i, j] == pytest.approx(inside, abs=3e-3)


def test_wcs_pixel_sky_pixel_round_trip_below_1e_6_pixel():
    cards = tan_cards(150.1, 2.2, 255.5, 255.5, 0.2, 23.0)
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-100, 600, 500), rng.uniform(-100, 600, 500)
    ra, dec = pixel_to_sky(cards, x, y)
    x2, y2 = sky_to_pixel(cards, ra, dec)
    assert np.max(np.hypot(x2 - x, y2 - y)) < 1e-6
    # independent gnomonic projection (standard coordinates, no astropy)
    h = dict((k, v) for k, v, _ in cards)
    cd = np.array([[h["CD1_1"], h["CD1_2"]], [h["CD2_1"], h["CD2_2"]]])
    xi, eta = np.radians(cd @ np.vstack([x + 1 - h["CRPIX1"], y + 1 - h["CRPIX2"]]))
    a0, d0 = math.radians(h["CRVAL1"]), math.radians(h["CRVAL2"])
    den = math.cos(d0) - eta * math.sin(d0)
    ra_ref = np.degrees(a0 + np.arctan2(xi, den)) % 360
    dec_ref = np.degrees(np.arctan2(math.sin(d0) + eta * math.cos(d0), np.hypot(xi, den)))
    assert np.max(np.abs(ra - ra_ref)) < 1e-10 and np.max(np.abs(dec - dec_ref)) < 1e-10


def test_sky_and_pixel_cutouts_agree_and_recover_true_positions(store):
    res = run_field(store, noise=True)
    truth = res["simulate.truth"]
    sky_cut = res["cutouts"]
    np.testing.assert_allclose(sky_cut.x, truth["x"], atol=1e-6)
    np.testing.assert_allclose(sky_cut.y, truth["y"], atol=1e-6)
    pixel_p = photometry_pipeline(
        simulate_config=SimulateConfig(nx=200, ny=200, positions=POSITIONS, fluxes=FLUXES),
        cutouts_config=CutoutsConfig(size=61, frame="pixel"),
    )
    pix_cut = pixel_p.run(store=store).raise_on_failure()["cutouts"]
    assert np.array_equal(pix_cut.data, sky_cut.data)
    assert np.array_equal(pix_cut.x0, sky_cut.x0) and np.array_equal(pix_cut.y0, sky_cut.y0)
    np.testing.assert_allclose(pix_cut.ra, truth["ra"], atol=1e-12)
    # the stamps are the image's physical values: the stored int16 + 32768 are the counts
    image = res["simulate.image"]
    k = 2
    x0, y0 = sky_cut.x0[k], sky_cut.y0[k]
    assert np.array_equal(sky_cut.data[k], image[y0 : y0 + 61, x0 : x0 + 61])
    # the centroid lands on the true position to well within a pixel
    cat = res["catalog"]
    assert np.max(np.hypot(cat.xc - cat.x_true, cat.yc - cat.y_true)) < 0.1
