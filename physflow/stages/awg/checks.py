"""Shape and range checks of a program, run when a ``ProgramConfig`` is built (so a YAML mistake
is reported by ``load_spec`` with its line, not later by a failing node)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ProgramConfig, SegmentSpec


def per_tone(value: Any, counts: list[int], where: str, field: str) -> list[list[float]]:
    """A number (every tone) or a per-channel list of per-tone lists, as lists of lists."""
    if isinstance(value, int | float):
        return [[float(value)] * n for n in counts]
    if len(value) != len(counts):
        raise ValueError(
            f"{where}: {field} has {len(value)} channel lists, the program has {len(counts)} "
            "channels; give one list per channel (or a single number for every tone)"
        )
    for ch, (row, n) in enumerate(zip(value, counts)):
        if len(row) != n:
            raise ValueError(
                f"{where}: {field} for channel {ch} has {len(row)} values but the channel has "
                f"{n} tones at this point; give one value per tone"
            )
    return [[float(v) for v in row] for row in value]


def check_amps(rows: list[list[float]], full_scale: float, where: str, field: str) -> None:
    for ch, row in enumerate(rows):
        for i, a in enumerate(row):
            if not (math.isfinite(a) and 0.0 <= a <= full_scale):
                raise ValueError(
                    f"{where}: {field}[{ch}][{i}] = {a!r} must be within 0..full_scale "
                    f"({full_scale}); one tone alone may not exceed full scale"
                )


def check_freqs(rows: list[list[float]], fs: float, where: str, field: str) -> None:
    for ch, row in enumerate(rows):
        for i, f in enumerate(row):
            if not (math.isfinite(f) and 0.0 < f < fs / 2):
                raise ValueError(
                    f"{where}: {field}[{ch}][{i}] = {f!r} Hz must be between 0 and the Nyquist "
                    f"frequency {fs / 2:g} Hz"
                )


def _check_segment(seg: SegmentSpec, counts: list[int], cfg: ProgramConfig) -> list[int]:
    where = f"segment '{seg.name}'"
    fs = cfg.sample_rate_hz
    if seg.freqs_hz is not None:
        if len(seg.freqs_hz) != len(counts):
            raise ValueError(
                f"{where}: freqs_hz has {len(seg.freqs_hz)} channel lists, the program has "
                f"{len(counts)} channels"
            )
        if seg.kind == "chirp":
            per_tone(seg.freqs_hz, counts, where, "freqs_hz")
        check_freqs(seg.freqs_hz, fs, where, "freqs_hz")
        new = [len(row) for row in seg.freqs_hz]
        if any(n == 0 for n in new):
            raise ValueError(f"{where}: every channel needs at least one tone in freqs_hz")
        if new != counts and seg.phase == "continue":
            raise ValueError(
                f"{where}: the number of tones changes ({counts} -> {new}), so phases cannot "
                "continue; use phase 'optimise' or 'manual'"
            )
        if new != counts and seg.amps is None:
            raise ValueError(
                f"{where}: the number of tones changes ({counts} -> {new}); give amps for the "
                "new tones"
            )
        counts = new
    if seg.df_hz is not None:
        for row in per_tone(seg.df_hz, counts, where, "df_hz"):
            if not all(math.isfinite(v) for v in row):
                raise ValueError(f"{where}: df_hz must be finite")
    if seg.amps is not None:
        check_amps(per_tone(seg.amps, counts, where, "amps"), cfg.full_scale, where, "amps")
    if seg.phases_rad is not None:
        for row in per_tone(seg.phases_rad, counts, where, "phases_rad"):
            if not all(math.isfinite(v) for v in row):
                raise ValueError(f"{where}: phases_rad must be finite")
    if seg.duration_s is not None and round(seg.duration_s * fs) < 1:
        raise ValueError(f"{where}: duration_s is shorter than one sample at {fs:g} S/s")
    return counts


def check_program(cfg: ProgramConfig) -> None:
    """Tone counts must agree through the program; explicit values must be in range."""
    fs = cfg.sample_rate_hz
    starts = [[float(f) for f in t.freqs_hz] for t in cfg.tones]
    check_freqs(starts, fs, "tones", "freqs_hz")
    check_amps([list(t.amps) for t in cfg.tones], cfg.full_scale, "tones", "amps")
    counts = [len(t.freqs_hz) for t in cfg.tones]
    for seg in cfg.segments:
        counts = _check_segment(seg, counts, cfg)
