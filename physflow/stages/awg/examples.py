"""Example programs: the one ``configs/awg_program.yaml`` describes, and a scalable one for the
benchmark (segments x tones x samples)."""

from __future__ import annotations

import numpy as np

from .builder import Program
from .model import Tones

#: What the scan in docs/awg.md and benchmarks/awg.py changes: a mid-program amplitude.
SCAN_SEGMENT = "probe"


def default_program() -> Program:
    """Two AOD axes (8 and 4 tones) at 625 MS/s: load, dim, probe, move out and back with a
    chirp between, image (looped), release. The same program as configs/awg_program.yaml."""
    x = Tones(freqs_hz=tuple(80e6 + 3e6 * i for i in range(8)), amps=(0.09,) * 8)
    y = Tones(freqs_hz=(85e6, 90e6, 95e6, 100e6), amps=(0.15,) * 4)
    return (
        Program([x, y], sample_rate_hz=625e6, full_scale=1.0)
        .hold("load", 40e-6, phase="optimise")
        .ramp("dim", 20e-6, amp_scale=0.5)
        .hold("low", 20e-6)
        .hold("probe", 10e-6, amps=0.05)
        .hold("back", 10e-6, amps=[[0.045] * 8, [0.075] * 4])
        .move("out", 100e-6, df_hz=[[2e6] * 8, [0.0] * 4])
        .hold("hold_out", 30e-6)
        .chirp("sweep", 50e-6, df_hz=-4e6)
        .hold("settle", 20e-6)
        .move("back_in", 100e-6, df_hz=[[2e6] * 8, [4e6] * 4])
        .hold("image", 40e-6, phase="optimise", loops=4)
        .ramp("release", 20e-6, amps=0.0)
    )


def big_program(
    n_segments: int = 32, tones: int = 12, samples_per_segment: int = 262_144
) -> Program:
    """A long program for benchmarks: holds, ramps, moves and chirps in turn on two channels
    of ``tones`` tones; the segment called ``probe`` (a hold with its own amplitudes, near the
    middle) is what a scan changes. 32 x 262,144 samples = 8.4 M samples per channel."""
    n = samples_per_segment - samples_per_segment % 32
    x = Tones(freqs_hz=tuple(np.linspace(80e6, 102e6, tones)), amps=(0.05,) * tones)
    y = Tones(freqs_hz=tuple(np.linspace(85e6, 100e6, tones)), amps=(0.05,) * tones)
    prog = Program([x, y]).hold("load", n_samples=n, phase="optimise")
    pattern = ("hold", "ramp", "move", "hold", "chirp", "hold", "move", "ramp")
    for i in range(1, n_segments):
        name = SCAN_SEGMENT if i == n_segments // 2 else f"seg{i:02d}"
        # the probe and the segment after it are holds with their own amplitudes, so a scan
        # of the probe's amplitude changes the probe alone (a ramp after it would start there)
        mid = i in (n_segments // 2, n_segments // 2 + 1)
        kind = "hold" if mid else pattern[i % len(pattern)]
        if kind == "hold":
            prog.hold(name, n_samples=n, amps=0.04 if name == SCAN_SEGMENT else 0.05)
        elif kind == "ramp":
            prog.ramp(name, n_samples=n, amps=0.045 if i % 2 else 0.05)
        elif kind == "move":
            prog.move(name, n_samples=n, df_hz=0.5e6 if i % 8 == 2 else -0.5e6)
        else:
            prog.chirp(name, n_samples=n, df_hz=0.25e6)
    return prog
