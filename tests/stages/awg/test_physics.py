"""Waveform physics: crest factor sqrt(2N) and its optimisation (cached per signature), the
chirp's linear instantaneous frequency and the move's minimum-jerk one (analytic signal), and
phase continuity at ``continue`` boundaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from physflow.stages import awg
from physflow.stages.awg import crest

from .helpers import FS, analytic_phase_steps, equal_tones, instantaneous_frequency, one_tone

pytest.importorskip("scipy.signal")

#: Achieved by the optimiser for 8 equal tones 1 MHz apart (zero phase: sqrt(16) = 4).
OPTIMISED_CREST_8 = 1.8
#: Chirp/move instantaneous frequency vs the designed profile, 32-sample average, central 90%.
SWEEP_TOLERANCE_HZ = 2e3


@pytest.mark.parametrize("n", [2, 4, 8, 12])
def test_equal_tones_at_zero_phase_have_crest_factor_sqrt_2n(store, n):
    prog = equal_tones(n).hold("h", n_samples=24_992, phase="manual", phases_rad=0.0)
    res = prog.pipeline().run(store=store).raise_on_failure()
    x = res["h"].samples[0]
    assert awg.crest_factor(x) == pytest.approx(math.sqrt(2 * n), rel=2e-3)
    assert res["h"].peak[0] == n * round(0.05 * 32767)  # all in phase at sample 0


def test_optimised_phases_do_strictly_better(store, fresh_crest):
    prog = equal_tones(8).hold("h", n_samples=24_992, phase="optimise")
    res = prog.pipeline().run(store=store).raise_on_failure()
    achieved = awg.crest_factor(res["h"].samples[0])
    assert achieved < OPTIMISED_CREST_8 < math.sqrt(16)
    # same tones, same power: only the phases differ
    zero = equal_tones(8).hold("h", n_samples=24_992, phase="manual", phases_rad=0.0)
    ref = zero.pipeline().run(store=store).raise_on_failure()["h"]
    assert res["h"].rms[0] == pytest.approx(ref.rms[0], rel=1e-3)
    assert res["h"].peak[0] < 0.5 * ref.peak[0]


def test_crest_optimisation_runs_once_per_signature(store, fresh_crest):
    # two holds with the same (frequencies, amplitudes) and one with other amplitudes
    prog = (
        equal_tones(6)
        .hold("a", n_samples=12_512, phase="optimise")
        .ramp("down", n_samples=3200, amp_scale=0.5)
        .hold("b", n_samples=12_512, phase="optimise", amps=0.05)
        .hold("c", n_samples=12_512, phase="optimise", amps=0.03)
    )
    a, _, b, c = prog.resolve().contents
    assert a.channels[0].crest == b.channels[0].crest != c.channels[0].crest
    prog.pipeline().run(store=store).raise_on_failure()
    assert fresh_crest.stats()["optimisations"] == 2
    # another process (empty in-process table) on the same store: the store's memo answers
    fresh_crest.clear_cache()
    other = equal_tones(6).hold("again", n_samples=12_512, phase="optimise", amps=0.03)
    other.ramp("tail", n_samples=640, amp_scale=0.5)  # continues c's optimised phases
    res = other.pipeline().run(store=store).raise_on_failure()
    assert "again" in res.hits  # same content as 'c' under another name
    assert "tail" in res.misses  # new content that needs the optimum of c's signature
    assert fresh_crest.stats()["optimisations"] == 0


def test_chirp_instantaneous_frequency_is_linear(store):
    n = 62_496
    prog = one_tone(80e6).chirp("c", n_samples=n, freqs_hz=[[100e6]])
    res = prog.pipeline().run(store=store).raise_on_failure()
    f = instantaneous_frequency(res["c"].samples[0])
    centre = np.arange(f.size) + 0.5 + 15.5  # sample positions of the averaged estimates
    linear = 80e6 + 20e6 * centre / n
    inner = slice(int(0.05 * n), int(0.95 * n))
    assert np.abs(f - linear)[inner].max() < SWEEP_TOLERANCE_HZ
    # a fit gives the designed sweep rate (20 MHz over n samples)
    slope = np.polyfit(centre[inner], f[inner], 1)[0]
    assert slope == pytest.approx(20e6 / n, rel=1e-4)


def test_move_follows_minimum_jerk_not_linear(store):
    n = 62_496
    res = one_tone(100e6).move("m", n_samples=n, df_hz=-20e6).pipeline().run(store=store)
    f = instantaneous_frequency(res.raise_on_failure()["m"].samples[0])
    s = (np.arange(f.size) + 16.0) / n
    min_jerk = 100e6 - 20e6 * (10 * s**3 - 15 * s**4 + 6 * s**5)
    inner = slice(int(0.05 * n), int(0.95 * n))
    assert np.abs(f - min_jerk)[inner].max() < SWEEP_TOLERANCE_HZ
    assert np.abs(f - (100e6 - 20e6 * s))[inner].max() > 1e6  # clearly not a linear sweep


def _boundary_jumps(x: np.ndarray, boundaries: list[int], gap: int = 24, span: int = 400):
    """Phase jump at each boundary: quadratic fits of the analytic phase on either side
    (leaving out ``gap`` samples, where the Hilbert transform smears a jump), both evaluated at
    the boundary. Zero for a continuous phase, the jump (wrapped to +-pi) otherwise."""
    phase = np.cumsum(np.concatenate([[0.0], analytic_phase_steps(x)]))
    out = []
    for b in boundaries:
        left = np.arange(b - span, b - gap)
        right = np.arange(b + gap, b + span)
        at_left = np.polyval(np.polyfit(left - b, phase[left], 2), 0.0)
        at_right = np.polyval(np.polyfit(right - b, phase[right], 2), 0.0)
        out.append(float(abs((at_right - at_left + np.pi) % (2 * np.pi) - np.pi)))
    return out


def test_continue_boundaries_are_phase_continuous(store):
    prog = (
        one_tone(90e6)
        .hold("a", n_samples=6400)
        .chirp("b", n_samples=9600, df_hz=3e6)
        .ramp("c", n_samples=3200, amp_scale=0.8)
        .move("d", n_samples=9600, df_hz=-5e6)
        .hold("e", n_samples=6400)
        .chirp("f", n_samples=6400, df_hz=1e6)
    )
    res = prog.pipeline().run(store=store).raise_on_failure()
    x = res["assemble.samples"][0]
    offsets = list(res["assemble.steps"].offsets[1:])
    one_sample = 2 * np.pi * 96e6 / FS  # the fastest tone's phase advance per sample
    jumps = _boundary_jumps(x, offsets)
    assert max(jumps) < 1e-2 < one_sample
    # a manual phase at a boundary is a visible jump of that size (the check can fail)
    manual = one_tone(90e6).hold("a", n_samples=6400)
    manual.hold("b", n_samples=6400, phase="manual", phases_rad=1.0)
    y = manual.pipeline().run(store=store).raise_on_failure()["assemble.samples"][0]
    assert _boundary_jumps(y, [6400])[0] == pytest.approx(1.0, abs=0.02)


def test_continue_phases_chain_exactly_from_resolved_content():
    prog = one_tone(90e6).chirp("b", n_samples=9600, df_hz=3e6).hold("e", n_samples=6400)
    b, e = prog.resolve().contents
    f0, f1 = b.channels[0].f0_hz[0], b.channels[0].f1_hz[0]
    turns = (f0 + f1) / 2 * 9600 / FS  # the chirp's phase advance (its mean frequency)
    word = e.channels[0].phase0[0]
    assert abs(((word / 2**32 - turns) + 0.5) % 1.0 - 0.5) < 2**-31


def _direct(content: awg.SegmentContent, phases) -> np.ndarray:
    """Textbook synthesis, independent of the pack's kernels: per tone a(n) cos(2 pi phi(n))
    with phi from the closed-form phase polynomial, summed in float64 and rounded."""
    n = np.arange(content.n_samples, dtype=np.float64)
    s = n / content.n_samples
    shape = s**4 * (2.5 - 3 * s + s * s) if content.kind == "move" else s * s / 2
    rows = []
    for ch, extra in zip(content.channels, phases):
        x = np.zeros(content.n_samples)
        for i, (f0, f1) in enumerate(zip(ch.f0_hz, ch.f1_hz)):
            a = ch.a0[i] + (ch.a1[i] - ch.a0[i]) * s
            turns = ch.phase0[i] / 2**32 + extra[i]
            turns = turns + (f0 * n + (f1 - f0) * content.n_samples * shape) / FS
            x += a * np.cos(2 * np.pi * turns)
        rows.append(np.clip(np.rint(x), -32767, 32767))
    return np.array(rows)


def test_kernels_agree_with_direct_evaluation(store, fresh_crest):
    prog = (
        awg.Program(
            [
                awg.Tones(freqs_hz=[80e6, 83e6, 86.5e6], amps=[0.2, 0.25, 0.3]),
                awg.Tones(freqs_hz=[95e6, 99e6], amps=[0.3, 0.2]),
            ]
        )
        .hold("h", n_samples=5000 - 5000 % 32, phase="optimise")
        .ramp("r", n_samples=3008, amps=[[0.1, 0.3, 0.2], [0.05, 0.4]])
        .chirp("c", n_samples=4032, df_hz=[[2e6, -1e6, 0.5e6], [1e6, 1e6]])
        .move("m", n_samples=4032, df_hz=-1.5e6)
        .hold("h2", n_samples=2048, phase="manual", phases_rad=[[0.1, 0.2, 0.3], [1.0, 2.0]])
    )
    res = prog.pipeline().run(store=store).raise_on_failure()
    for name, content in zip(("h", "r", "c", "m", "h2"), prog.resolve().contents):
        phases = [
            crest.crest_phases(ch.crest, FS) if ch.crest else [0.0] * len(ch.f0_hz)
            for ch in content.channels
        ]
        diff = np.abs(res[name].samples.astype(np.int64) - _direct(content, phases))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-4, name  # at most a rounding tie
