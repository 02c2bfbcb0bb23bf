"""Resolve a program: user intent -> absolute, quantised content per segment + the step table.

Three passes over the segments:

1. nominal: sample counts (multiples of 32), absolute target frequencies (``move`` and ``df_hz``
   applied), amplitudes in DAC codes;
2. frequencies: holds snap each tone to a whole number of cycles over the segment (so it loops
   seamlessly and its FFT peak is one bin); swept tones start where the previous segment ended
   and end on the next hold's snapped frequency (no step), otherwise on the 32-bit tuning grid;
3. phases: ``continue`` takes the predecessor's end phases (computed here, exactly as synthesis
   advances them), ``manual`` the given ones, ``optimise`` the crest optimum of the segment's
   (frequencies, amplitudes), computed at synthesis and only once per signature.

Each pass is a pure function per segment of (segment, incoming state), memoised in-process, so
re-resolving a program that differs in one segment (a scan point) costs little more than
hashing its segments.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from .checks import check_amps, check_freqs, per_tone
from .model import (
    FULL_CODE,
    GRANULE,
    PHASE_WORDS,
    PROGRAM_CHECKS,
    TUNING_BITS,
    ChannelContent,
    CrestSignature,
    ProgramConfig,
    SegmentContent,
    SegmentSpec,
    StepTable,
)

FRows = tuple[tuple[float, ...], ...]
IRows = tuple[tuple[int, ...], ...]
Phases = tuple[tuple[CrestSignature | None, tuple[int, ...]], ...]
T = TypeVar("T")
_MEMO = 8192


class Resolved(NamedTuple):
    table: StepTable
    contents: tuple[SegmentContent, ...]


class _Nominal(NamedTuple):
    n: int
    f_start: FRows
    f_end: FRows
    a0: IRows
    a1: IRows
    jump: bool  # a hold that sets its own frequencies
    amps_out: FRows  # nominal amplitudes after the segment (full-scale units)


def _memo(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except TypeError as exc:  # unhashable arguments (lists built by hand): compute directly
        if "unhashable" not in str(exc):
            raise
        return fn.__wrapped__(*args)  # type: ignore[attr-defined]


def segment_samples(seg: SegmentSpec, fs: float) -> int:
    """Sample count: ``n_samples`` as given, else the duration rounded to a multiple of 32."""
    if seg.n_samples is not None:
        return seg.n_samples
    assert seg.duration_s is not None
    return max(GRANULE, round(seg.duration_s * fs / GRANULE) * GRANULE)


def amplitude_codes(amp: float, full_scale: float) -> int:
    """Amplitude ``amp`` of full scale ``full_scale`` in DAC codes: round(A / F * 32767)."""
    return round(amp / full_scale * FULL_CODE)


def tuning_grid(f: float, fs: float) -> float:
    """``f`` on the grid of a 32-bit tuning word (fs / 2**32, 0.146 Hz at 625 MS/s)."""
    step = fs / (1 << TUNING_BITS)
    return round(f / step) * step


def phase_word(turns: float) -> int:
    """A phase in turns as a 32-bit phase word."""
    return round((turns % 1.0) * PHASE_WORDS) % PHASE_WORDS


def _tuples(rows: Any) -> FRows:
    return tuple(tuple(row) for row in rows)


@functools.lru_cache(maxsize=_MEMO)
def _nominal_step(seg: SegmentSpec, f: FRows, a: FRows, fs: float, full: float) -> _Nominal:
    where = f"segment '{seg.name}'"
    jump = seg.kind == "hold" and seg.freqs_hz is not None
    if jump:
        f = _tuples(seg.freqs_hz)
    counts = [len(row) for row in f]
    if seg.kind == "chirp" and seg.freqs_hz is not None:
        f_end = _tuples(per_tone(seg.freqs_hz, counts, where, "freqs_hz"))
    elif seg.df_hz is not None:
        df = per_tone(seg.df_hz, counts, where, "df_hz")
        f_end = tuple(tuple(x + d for x, d in zip(fr, dr)) for fr, dr in zip(f, df))
    else:
        f_end = f
    check_freqs(f_end, fs, where, "the resulting frequency")
    if seg.amps is not None:
        target = _tuples(per_tone(seg.amps, counts, where, "amps"))
    elif seg.amp_scale is not None:
        target = tuple(tuple(x * seg.amp_scale for x in row) for row in a)
    else:
        target = a
    check_amps(target, full, where, "the resulting amplitude")
    a1 = tuple(tuple(amplitude_codes(x, full) for x in row) for row in target)
    a0 = a1 if seg.kind == "hold" else tuple(tuple(amplitude_codes(x, full) for x in r) for r in a)
    return _Nominal(segment_samples(seg, fs), f, f_end, a0, a1, jump, target)


def _nominal(cfg: ProgramConfig) -> list[_Nominal]:
    fs, full = cfg.sample_rate_hz, cfg.full_scale
    f: FRows = tuple(tuple(t.freqs_hz) for t in cfg.tones)
    a: FRows = tuple(tuple(t.amps) for t in cfg.tones)
    out = []
    for seg in cfg.segments:
        nom = _memo(_nominal_step, seg, f, a, fs, full)
        out.append(nom)
        f, a = nom.f_end, nom.amps_out
    return out


@functools.lru_cache(maxsize=_MEMO)
def _snap(f: FRows, n: int, fs: float, name: str) -> tuple[IRows, FRows]:
    """Whole cycles of every tone over n samples, and the frequencies they make."""
    cycles = tuple(tuple(round(x * n / fs) for x in row) for row in f)
    for ch, row in enumerate(cycles):
        for i, k in enumerate(row):
            if not 0 < k < n / 2:
                raise ValueError(
                    f"segment '{name}': tone {i} of channel {ch} at {f[ch][i]:g} Hz makes {k} "
                    f"whole cycles in {n} samples; it needs 0 < cycles < n/2 (lengthen it)"
                )
    return cycles, tuple(tuple(k * fs / n for k in row) for row in cycles)


def _grid(rows: FRows, fs: float) -> FRows:
    return tuple(tuple(tuning_grid(x, fs) for x in row) for row in rows)


def _frequencies(
    cfg: ProgramConfig, nominal: list[_Nominal]
) -> list[tuple[FRows, FRows, IRows | None]]:
    """Per segment: actual start and end frequency of every tone, and whole cycles for holds."""
    fs = cfg.sample_rate_hz
    segs = cfg.segments
    snaps = [
        _snap(nom.f_start, nom.n, fs, s.name) if s.kind == "hold" else None
        for s, nom in zip(segs, nominal)
    ]
    prev = _grid(nominal[0].f_start, fs)
    out = []
    for i, (seg, nom) in enumerate(zip(segs, nominal)):
        held = snaps[i]
        if held is not None:
            f0 = f1 = held[1]
        elif seg.kind == "ramp":
            f0 = f1 = prev
        else:
            f0 = prev
            nxt = snaps[i + 1] if i + 1 < len(segs) and not nominal[i + 1].jump else None
            f1 = nxt[1] if nxt is not None else _grid(nom.f_end, fs)
        out.append((f0, f1, None if held is None else held[0]))
        prev = f1
    return out


def _advance(kind: str, n: int, fs: float, f0: tuple[float, ...], f1: tuple[float, ...]) -> list:
    """Turns each tone advances over the segment (what synthesis does from sample 0 to n)."""
    if kind == "hold":
        return [0.0] * len(f0)  # whole cycles
    if kind == "ramp":
        return [(x / fs * n) % 1.0 for x in f0]
    return [((x + y) / (2 * fs) * n) % 1.0 for x, y in zip(f0, f1)]


@functools.lru_cache(maxsize=_MEMO)
def _content_step(
    seg: SegmentSpec,
    nom: _Nominal,
    freqs: tuple[FRows, FRows, IRows | None],
    state: Phases,
    fs: float,
) -> tuple[SegmentContent, Phases]:
    """One segment's content and the phases it hands to the next segment."""
    f0, f1, cycles = freqs
    if seg.phase == "manual":
        counts = [len(row) for row in f0]
        rows = per_tone(seg.phases_rad, counts, f"segment '{seg.name}'", "phases_rad")
        state = tuple((None, tuple(phase_word(p / (2 * math.pi)) for p in row)) for row in rows)
    elif seg.phase == "optimise":
        state = tuple(
            (CrestSignature(freqs_hz=fr, amps=ar), (0,) * len(fr)) for fr, ar in zip(f0, nom.a0)
        )
    channels, after = [], []
    for ch, (crest, words) in enumerate(state):
        channels.append(
            ChannelContent(
                f0_hz=f0[ch],
                f1_hz=f1[ch],
                a0=nom.a0[ch],
                a1=nom.a1[ch],
                phase0=words,
                cycles=None if cycles is None else cycles[ch],
                crest=crest,
            )
        )
        adv = _advance(seg.kind, nom.n, fs, f0[ch], f1[ch])
        after.append((crest, tuple((w + phase_word(t)) % PHASE_WORDS for w, t in zip(words, adv))))
    content = SegmentContent(
        kind=seg.kind, n_samples=nom.n, sample_rate_hz=fs, channels=tuple(channels)
    )
    return content, tuple(after)


def _start_phases(cfg: ProgramConfig) -> Phases:
    out = []
    for t in cfg.tones:
        rad = t.phases_rad or (0.0,) * len(t.freqs_hz)
        out.append((None, tuple(phase_word(p / (2 * math.pi)) for p in rad)))
    return tuple(out)


def check_ranges(cfg: ProgramConfig) -> None:
    """Raise the resolver's ValueError (segment, channel, tone) for values out of range after
    relative changes; run when a ProgramConfig is built (memoised, so cheap to repeat)."""
    _frequencies(cfg, _nominal(cfg))


PROGRAM_CHECKS.append(check_ranges)


def resolve(cfg: ProgramConfig) -> Resolved:
    """The step table and every segment's resolved content (raises ValueError naming the
    segment, channel and tone when a value is out of range)."""
    fs = cfg.sample_rate_hz
    nominal = _nominal(cfg)
    freqs = _frequencies(cfg, nominal)
    state = _start_phases(cfg)
    contents = []
    for seg, nom, fr in zip(cfg.segments, nominal, freqs):
        content, state = _memo(_content_step, seg, nom, fr, state, fs)
        contents.append(content)
    sizes = [nom.n for nom in nominal]
    offsets = [0]
    for n in sizes[:-1]:
        offsets.append(offsets[-1] + n)
    table = StepTable(
        names=tuple(s.name for s in cfg.segments),
        kinds=tuple(s.kind for s in cfg.segments),
        n_samples=tuple(sizes),
        offsets=tuple(offsets),
        loops=tuple(s.loops for s in cfg.segments),
        trigger=tuple(s.trigger for s in cfg.segments),
        channels=len(cfg.tones),
        sample_rate_hz=fs,
        full_scale=cfg.full_scale,
        on_clip=cfg.on_clip,
    )
    return Resolved(table, tuple(contents))
