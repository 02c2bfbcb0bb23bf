"""STFT references: tone on its bin, Hann coherent gain N/2, noise floor s^2 3N/8, Parseval."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from physflow.stages.rf import dsp
from physflow.stages.rf.xp import get_backend

NP = get_backend("numpy")


def _stft(x, n, hop):
    return dsp.stft_power(NP, np.asarray(x, np.complex64)[None, :], n, hop)[0]


def test_hann_window_sums():
    for n in (8, 256, 4096):
        w = dsp.hann(n).astype(np.float64)
        assert w.sum() == pytest.approx(n / 2, rel=1e-6)
        assert (w**2).sum() == pytest.approx(3 * n / 8, rel=1e-6)
    scipy_signal = pytest.importorskip("scipy.signal")
    np.testing.assert_allclose(dsp.hann(64), scipy_signal.get_window("hann", 64), atol=1e-7)


@pytest.mark.parametrize("k", [-2048, -1000, -1, 0, 1, 7, 1500, 2047])
def test_tone_lands_on_its_bin_with_coherent_gain(k):
    n, hop, amp, fs = 4096, 2048, 0.75, 20e6
    f = k * fs / n
    t = np.arange(4 * n) / fs
    p = _stft(amp * np.exp(2j * np.pi * f * t), n, hop)
    freqs = dsp.bin_freqs_hz(n, fs)
    peak = np.argmax(p, axis=1)
    assert np.all(freqs[peak] == f)
    # amplitude A -> |X| = A * sum(w) = A N / 2 on the bin (and Hann's neighbours at half)
    np.testing.assert_allclose(np.sqrt(p[:, peak[0]]), amp * n / 2, rtol=1e-4)
    if -2047 < k < 2046:
        i = peak[0]
        np.testing.assert_allclose(p[:, i - 1] / p[:, i], 0.25, rtol=1e-3)
        assert np.all(p[:, (i + 2) % n] / p[:, i] < 1e-9)  # Hann nulls a bin-centred tone at +-2


def test_noise_floor_is_sigma2_times_sum_of_squares():
    """Complex white noise of variance s^2: mean power per bin s^2 * 3N/8 (here 9.6e4 cells;
    the mean of exponentials has relative spread 1/sqrt(cells) = 0.3%, 5 sigma = 1.6%)."""
    rng = np.random.default_rng(11)
    n, hop, sigma2 = 1024, 1024, 2.5  # no overlap: independent columns
    x = (rng.standard_normal(96 * n) + 1j * rng.standard_normal(96 * n)) * np.sqrt(sigma2 / 2)
    p = _stft(x, n, hop)
    assert p.shape == (96, n)
    assert p.mean() == pytest.approx(sigma2 * 3 * n / 8, rel=0.016)
    # exponential per cell: variance equals the squared mean (a chi-square with 2 dof)
    assert p.std() / p.mean() == pytest.approx(1.0, rel=0.03)


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(
        np.complex64,
        st.integers(64, 600),
        elements=st.complex_numbers(max_magnitude=1e3, allow_nan=False, width=64),
    ),
    n=st.sampled_from([16, 32, 64]),
    hop=st.integers(1, 64),
)
def test_parseval_per_frame(x, n, hop):
    """sum_k P[k] = N sum_m |w[m] x[m]|^2 for every column (float32 rounding tolerance)."""
    p = _stft(x, n, hop).astype(np.float64)
    cols = dsp.columns_per_frame(x.size, n, hop)
    w = dsp.hann(n).astype(np.float64)
    for j in range(cols):
        seg = x[j * hop : j * hop + n].astype(np.complex128)
        energy = n * np.sum(np.abs(w * seg) ** 2)
        assert p[j].sum() == pytest.approx(energy, rel=1e-4, abs=1e-3)


def test_torch_backend_matches_numpy():
    pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 8192)) + 1j * rng.standard_normal((2, 8192))).astype(np.complex64)
    ref = dsp.stft_power(NP, x, 512, 256)
    tb = get_backend("torch")
    got = tb.to_numpy(dsp.stft_power(tb, x, 512, 256))
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=1e-3)
    rel, img = dsp.to_db_window(tb, tb.asarray(ref), 80.0, None)
    ref_rel, ref_img = dsp.to_db_window(NP, ref, 80.0, None)
    np.testing.assert_allclose(tb.to_numpy(rel), ref_rel, atol=1e-4)
    np.testing.assert_allclose(
        tb.to_numpy(dsp.resize(tb, img, (16, 32))), dsp.resize(NP, ref_img, (16, 32)), atol=1e-5
    )


def test_unknown_or_missing_backend_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'jaxx' is not known.*'numpy'"):
        get_backend("jaxx")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="backend 'cupy' needs the cupy package"):
            get_backend("cupy")


def test_db_window_and_resize():
    p = np.array([[[1.0, 1e-2, 1e-10, 0.0]]], dtype=np.float32)
    rel, img = dsp.to_db_window(NP, p, 80.0, None)
    np.testing.assert_allclose(rel, [[[0.0, -20.0, -80.0, -80.0]]], atol=1e-4)
    np.testing.assert_allclose(img, [[[1.0, 0.75, 0.0, 0.0]]], atol=1e-6)
    rel60, _ = dsp.to_db_window(NP, p, 60.0, None)
    np.testing.assert_allclose(rel60, [[[0.0, -20.0, -60.0, -60.0]]], atol=1e-4)
    fixed, _ = dsp.to_db_window(NP, p, 80.0, 10.0)  # fixed reference 10 dB
    np.testing.assert_allclose(fixed, [[[-10.0, -30.0, -80.0, -80.0]]], atol=1e-4)
    rng = np.random.default_rng(0)
    a = rng.random((30, 40)).astype(np.float32)
    small = dsp.resize(NP, a, (10, 8))
    np.testing.assert_allclose(small, a.reshape(10, 3, 8, 5).mean(axis=(1, 3)), rtol=1e-5)
    odd = dsp.resize(NP, a, (7, 9))  # fractional overlaps: the image mean is preserved
    assert odd.mean() == pytest.approx(a.mean(), rel=1e-5)
    assert dsp.quantize(np.array([0.0, 0.5, 1.0, 1.2]), "uint8").tolist() == [0, 128, 255, 255]
