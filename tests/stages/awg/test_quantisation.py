"""Quantisation and the DAC mapping: whole-cycle holds on one FFT bin, 32-sample lengths,
round(A/F * 32767) codes, and clipping that is reported (or refused), never silent."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from physflow.stages import awg

from .helpers import FS, one_tone

#: Every FFT bin but the tone's is at least this far below it for a snapped 0.5 FS hold.
LEAKAGE_FLOOR_DBC = -110.0


def test_90mhz_hold_is_3599_whole_cycles_on_fft_bin_3599(store):
    prog = one_tone(90e6, 0.5).hold("h", n_samples=24_992)
    (content,) = prog.resolve().contents
    assert content.n_samples == 24_992 and content.channels[0].cycles == (3599,)
    assert content.channels[0].f0_hz[0] == pytest.approx(3599 * FS / 24_992, rel=1e-15)
    res = prog.pipeline().run(store=store).raise_on_failure()
    x = res["h"].samples[0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x))
    assert int(np.argmax(spectrum)) == 3599
    leakage = np.delete(spectrum, 3599).max() / spectrum[3599]
    assert 20 * np.log10(leakage) < LEAKAGE_FLOOR_DBC
    # the same tone at exactly 90 MHz (not a whole number of cycles) leaks far above the floor
    n = np.arange(24_992)
    raw = np.rint(16384 * np.cos(2 * np.pi * 90e6 * n / FS))
    raw_spec = np.abs(np.fft.rfft(raw))
    assert 20 * np.log10(np.delete(raw_spec, 3599).max() / raw_spec.max()) > -40
    # whole cycles: the segment repeats seamlessly (sample N would equal sample 0)
    k, N = 3599, 24_992
    assert np.allclose(np.cos(2 * np.pi * k * np.arange(N + 1) / N)[[0, N]], 1.0)


@pytest.mark.parametrize(
    ("duration_s", "expected"),
    [(39.9872e-6, 24_992), (40e-6, 24_992), (40.03e-6, 25_024), (1e-9, 32), (0.2e-6, 128)],
)
def test_segment_lengths_are_multiples_of_32_samples(duration_s, expected):
    (content,) = one_tone().hold("h", duration_s).resolve().contents
    assert content.n_samples == expected and content.n_samples % awg.GRANULE == 0
    # nearest multiple of 32 (at least one granule)
    assert abs(content.n_samples - duration_s * FS) <= 16 or content.n_samples == 32


def test_lengths_not_on_the_granule_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"n_samples = 1000 must be a positive multiple of 32"):
        one_tone().hold("h", n_samples=1000)


@pytest.mark.parametrize(("amp", "full_scale"), [(0.2, 0.5), (0.3, 1.0), (0.123456, 0.4)])
def test_amplitude_maps_to_round_a_over_f_times_32767_codes(store, amp, full_scale):
    # a tone at fs/4 with phase 0 samples cos at 0, pi/2, pi, 3pi/2: exactly +A, 0, -A, 0 codes
    prog = one_tone(FS / 4, amp, full_scale=full_scale)
    prog.hold("h", n_samples=4096, phase="manual", phases_rad=0.0)
    res = prog.pipeline().run(store=store).raise_on_failure()
    x = res["h"].samples[0]
    code = round(amp / full_scale * 32767)
    expected = np.tile(np.array([code, 0, -code, 0], dtype=np.int16), 1024)
    np.testing.assert_array_equal(x, expected)
    assert res["h"].peak == (code,) and res["h"].clipped == (0,)


def test_clipping_is_counted_reported_and_warned(store):
    prog = awg.Program([awg.Tones(freqs_hz=[80e6, 81e6], amps=[0.6, 0.6])])
    prog.hold("loud", n_samples=6240, phase="manual", phases_rad=0.0)
    # independent count: the same two whole-cycle tones evaluated directly
    n = np.arange(6240)
    k = np.round(np.array([80e6, 81e6]) * 6240 / FS)
    a = round(0.6 * 32767)
    direct = np.rint(a * np.cos(2 * np.pi * np.outer(k, n) / 6240).sum(axis=0))
    expected = int((np.abs(direct) > 32767).sum())
    assert expected > 0
    with pytest.warns(RuntimeWarning, match="loud"):
        res = prog.pipeline().run(store=store).raise_on_failure()
    assert res["loud"].clipped == (expected,)
    assert res["loud"].peak == (32767,)
    report = res["assemble.report"]
    assert report["clipped"] == {"loud": expected} and report["clipped_total"] == expected
    x = res["assemble.samples"][0]
    np.testing.assert_array_equal(x, np.clip(direct, -32767, 32767).astype(np.int16))


def test_on_clip_error_fails_the_run_and_the_compiler(store, tmp_path):
    prog = awg.Program([awg.Tones(freqs_hz=[80e6, 81e6], amps=[0.6, 0.6])], on_clip="error")
    prog.hold("loud", n_samples=6240, phase="manual", phases_rad=0.0)
    res = prog.pipeline().run(store=store)
    assert res.failed == ["assemble"]
    assert "loud" in res.errors["assemble"] and "clips" in res.errors["assemble"]
    with awg.Compiler(store=tmp_path / "c") as compiler, pytest.raises(ValueError, match="loud"):
        compiler.prepare_point(prog)


def test_no_clipping_no_warning(store):
    prog = one_tone(90e6, 0.9).hold("h", n_samples=2048)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = prog.pipeline().run(store=store).raise_on_failure()
    assert res["assemble.report"]["clipped"] == {}


def test_swept_tones_sit_on_the_32_bit_tuning_grid_and_end_on_the_next_hold():
    step = FS / 2**32
    prog = one_tone(90e6).chirp("c", n_samples=6400, freqs_hz=[[90.123456789e6]])
    prog.chirp("c2", n_samples=6400, df_hz=1.1e6).hold("h", n_samples=24_992)
    c, c2, h = prog.resolve().contents
    f1 = c.channels[0].f1_hz[0]
    assert f1 / step == pytest.approx(round(f1 / step), abs=1e-6)
    assert abs(f1 - 90.123456789e6) <= step / 2
    # the sweep into a hold ends exactly on the hold's whole-cycle frequency (no step)
    assert c2.channels[0].f1_hz == h.channels[0].f0_hz
    assert h.channels[0].cycles == (round((90.123456789e6 + 1.1e6) * 24_992 / FS),)
