"""The Python builder: validation with messages that name the segment and the fix, the
resolved content it produces, and the array-module switch (numpy here; cupy when present)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from physflow.stages import awg
from physflow.stages.awg import stages, synth

from .helpers import one_tone


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda p: p.hold("1bad", 1e-6), "not valid"),
        (lambda p: p.hold("program", 1e-6), "reserved"),
        (lambda p: p.add("wiggle", "w", 1e-6), "kind 'wiggle'"),
        (lambda p: p.hold("h"), "exactly one of duration_s or n_samples"),
        (lambda p: p.move("m", 1e-6), "a move needs df_hz"),
        (lambda p: p.ramp("r", 1e-6), "a ramp needs amps or amp_scale"),
        (lambda p: p.chirp("c", 1e-6, freqs_hz=[[1e6]], df_hz=1.0), "freqs_hz .* or df_hz"),
        (lambda p: p.ramp("r", 1e-6, amps=0.1, loops=3), "loops"),
        (lambda p: p.hold("h", 1e-6, phase="manual"), "phases_rad exactly when"),
        (lambda p: p.hold("h", 1e-6, phase="sideways"), "phase 'sideways'"),
        (lambda p: p.hold("h", 1e-6, colour="red"), "unknown field"),
    ],
)
def test_bad_segments_are_refused_at_once(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build(one_tone())


def test_program_level_checks_name_segment_channel_and_tone():
    prog = one_tone(90e6).move("up", 1e-6, df_hz=300e6)
    with pytest.raises(ValueError, match=r"segment 'up'.*Nyquist"):
        prog.config  # noqa: B018
    prog = one_tone(90e6, 0.8).ramp("up", 1e-6, amp_scale=2.0)
    with pytest.raises(ValueError, match=r"segment 'up'.*full_scale"):
        prog.resolve()
    prog = one_tone(90e6).hold("h", n_samples=32)
    with pytest.raises(ValueError, match=r"segment 'h'.*whole cycles"):
        awg.Program([awg.Tones(freqs_hz=[1e3], amps=[0.1])]).hold("h", n_samples=32).resolve()
    two = awg.Program([awg.Tones(freqs_hz=[90e6, 91e6], amps=[0.1, 0.1])])
    with pytest.raises(ValueError, match="phases cannot continue"):
        two.hold("h", 1e-6, freqs_hz=[[90e6]], amps=0.1).config  # noqa: B018
    with pytest.raises(ValueError, match="repeated: h"):
        one_tone().hold("h", 1e-6).hold("h", 1e-6).config  # noqa: B018


def test_relative_intent_resolves_to_absolute_content():
    prog = (
        awg.Program([awg.Tones(freqs_hz=[90e6, 95e6], amps=[0.2, 0.4])], full_scale=0.8)
        .move("m", n_samples=6400, df_hz=[[1e6, -2e6]])
        .ramp("r", n_samples=3200, amp_scale=0.5)
    )
    m, r = prog.resolve().contents
    step = 625e6 / 2**32
    assert m.channels[0].f1_hz == pytest.approx((91e6, 93e6), abs=step)
    assert r.channels[0].f0_hz == m.channels[0].f1_hz  # a ramp keeps the frequencies
    assert r.channels[0].a0 == (round(0.25 * 32767), round(0.5 * 32767))
    assert r.channels[0].a1 == (round(0.125 * 32767), round(0.25 * 32767))
    # numpy arrays and lists are accepted and give the same content
    again = awg.Program([(np.array([90e6, 95e6]), np.array([0.2, 0.4]))], full_scale=0.8)
    again.move("m", n_samples=6400, df_hz=np.array([[1e6, -2e6]]))
    again.ramp("r", n_samples=3200, amp_scale=0.5)
    assert again.resolve().contents == (m, r)


def test_module_functions_make_the_same_segments_as_the_methods():
    tones = [awg.Tones(freqs_hz=[90e6, 95e6], amps=[0.2, 0.4])]
    fluent = (
        awg.Program(tones)
        .hold("a", n_samples=3200, phase="optimise")
        .ramp("b", n_samples=3200, amp_scale=0.5)
        .chirp("c", n_samples=6400, df_hz=2e6)
        .move("d", n_samples=6400, df_hz=[[1e6, -1e6]])
    )
    listed = awg.Program(
        tones,
        segments=[
            awg.hold("a", n_samples=3200, phase="optimise"),
            awg.ramp("b", n_samples=3200, amp_scale=0.5),
            awg.chirp("c", n_samples=6400, df_hz=2e6),
            awg.move("d", n_samples=6400, df_hz=[[1e6, -1e6]]),
        ],
    )
    assert listed.config == fluent.config
    assert [s.kind for s in listed.segments] == ["hold", "ramp", "chirp", "move"]


def test_synthesis_goes_through_the_array_module_switch():
    prog = awg.Program([awg.Tones(freqs_hz=[88e6, 91e6], amps=[0.2, 0.3])])
    prog.hold("h", n_samples=4096).chirp("c", n_samples=4096, df_hz=1e6)
    for content in prog.resolve().contents:
        codes, clipped, peak, _ = synth.synthesise(content, np)  # the explicit switch
        wave = stages.synthesise_wave(content, stages.SynthConfig(array_module="numpy"))
        np.testing.assert_array_equal(codes, wave.samples)
        assert (clipped, peak) == (wave.clipped, wave.peak)
    assert synth.array_module("numpy") is np


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_cupy_without_cupy_says_how_to_install(tmp_path):
    with pytest.raises(ImportError, match="cupy-cuda12x"):
        synth.array_module("cupy")
    with pytest.raises(ImportError, match="cupy"):
        awg.Compiler(tmp_path / "s", array_module="cupy")


def test_cupy_synthesis_matches_numpy():
    cupy = pytest.importorskip("cupy", reason="cupy (and a CUDA GPU) not available")
    prog = awg.Program([awg.Tones(freqs_hz=[88e6, 91e6], amps=[0.2, 0.3])])
    prog.hold("h", n_samples=4096).move("m", n_samples=4096, df_hz=1e6)
    for content in prog.resolve().contents:
        on_gpu = synth.synthesise(content, cupy)[0].get()
        on_cpu = synth.synthesise(content, np)[0]
        assert np.abs(on_gpu.astype(int) - on_cpu).max() <= 1  # rounding ties may differ
