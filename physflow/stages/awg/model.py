"""Types of an AWG program: the user's intent (``ProgramConfig``) and what it resolves to
(``SegmentContent`` per segment, a ``StepTable``), plus a synthesised ``SegmentWave``.

Intent is what a physicist writes (``move(df=1 MHz)``, ``amp_scale=0.5``); resolved content is
absolute and quantised (tone frequencies in Hz on the tuning grid or whole cycles, amplitudes in
DAC codes, start phases as 32-bit phase words, a sample count). Cache keys come from resolved
content only, so an edit early in a program reaches exactly the segments whose samples change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import numpy as np

import physflow as pf

#: Segment lengths are multiples of this many samples (AWG memory granularity).
GRANULE = 32
#: Amplitude A of full scale F maps to round(A / F * FULL_CODE) DAC codes.
FULL_CODE = 32767
#: Start phases are 32-bit phase words: 2**32 words per turn.
PHASE_WORDS = 1 << 32
#: Frequencies of swept and ramped tones are quantised to fs / 2**32 (a 32-bit tuning word).
TUNING_BITS = 32
#: A program has at most this many segments in a pipeline (output slots of ``awg.program``).
MAX_SEGMENTS = 64
#: Node ids the pipeline uses for itself (a segment cannot be called this).
RESERVED_NAMES = ("program", "assemble")

Kind = Literal["hold", "ramp", "chirp", "move"]
PhaseMode = Literal["continue", "optimise", "manual"]
OnClip = Literal["report", "error"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
PerTone = float | tuple[tuple[float, ...], ...]


def slot_name(index: int) -> str:
    """Output slot of ``awg.program`` (and input of ``awg.assemble``) for segment ``index``."""
    return f"s{index:02d}"


SLOTS = tuple(slot_name(i) for i in range(MAX_SEGMENTS))


class Tones(pf.Config):
    """One channel's tones at the start of the program."""

    freqs_hz: tuple[float, ...]
    #: In the units of ``ProgramConfig.full_scale`` (e.g. volts, or fractions of 1.0).
    amps: tuple[float, ...]
    phases_rad: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _as_tuples(self, ("freqs_hz", "amps", "phases_rad"), depth=1)
        if not self.freqs_hz:
            raise ValueError("Tones.freqs_hz is empty; a channel needs at least one tone")
        if len(self.amps) != len(self.freqs_hz):
            raise ValueError(
                f"Tones.amps has {len(self.amps)} values for {len(self.freqs_hz)} frequencies; "
                "give one amplitude per tone"
            )
        if self.phases_rad is not None and len(self.phases_rad) != len(self.freqs_hz):
            raise ValueError("Tones.phases_rad needs one phase per tone (or leave it out)")


class SegmentSpec(pf.Config):
    """One segment as the user means it (see docs/awg.md for each kind)."""

    name: str
    kind: Kind
    duration_s: float | None = None
    n_samples: int | None = None
    phase: PhaseMode = "continue"
    #: ``manual`` start phases: one value for every tone, or per channel per tone.
    phases_rad: PerTone | None = None
    #: ``hold``: jump to these frequencies; ``chirp``: sweep to them.
    freqs_hz: tuple[tuple[float, ...], ...] | None = None
    #: ``move`` / ``chirp``: change every tone (a number) or each (per channel per tone).
    df_hz: PerTone | None = None
    #: ``hold``: step to these amplitudes; other kinds: ramp to them by the end.
    amps: PerTone | None = None
    amp_scale: float | None = None
    loops: int = 1
    #: The sequencer waits for a trigger at this step (loops the segment until then).
    trigger: bool = False

    def __post_init__(self) -> None:
        _as_tuples(self, ("phases_rad", "freqs_hz", "df_hz", "amps"), depth=2)
        where = f"segment '{self.name}'"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"segment name {self.name!r} is not valid: it becomes a node id, so use letters, "
                "digits, '_' or '-', starting with a letter"
            )
        if self.name in RESERVED_NAMES:
            raise ValueError(f"{where}: the name is reserved; rename it")
        if self.kind not in ("hold", "ramp", "chirp", "move"):
            raise ValueError(f"{where}: kind {self.kind!r} is not hold, ramp, chirp or move")
        if self.phase not in ("continue", "optimise", "manual"):
            raise ValueError(f"{where}: phase {self.phase!r} is not continue, optimise or manual")
        _check_length(self, where)
        if (self.phase == "manual") != (self.phases_rad is not None):
            raise ValueError(f"{where}: give phases_rad exactly when phase is 'manual'")
        _check_kind_fields(self, where)
        if self.amps is not None and self.amp_scale is not None:
            raise ValueError(f"{where}: give amps or amp_scale, not both")
        if self.amp_scale is not None and not (
            math.isfinite(self.amp_scale) and self.amp_scale >= 0
        ):
            raise ValueError(f"{where}: amp_scale must be a finite number >= 0")
        if self.loops < 1 or (self.loops > 1 and self.kind != "hold"):
            raise ValueError(f"{where}: loops must be >= 1, and > 1 only for a hold (whole cycles)")
        if self.trigger and self.kind != "hold":
            raise ValueError(
                f"{where}: only a hold can wait for a trigger (it must loop seamlessly)"
            )


def _as_tuples(obj: Any, fields: tuple[str, ...], depth: int) -> None:
    """Lists (or arrays) given in Python become tuples of floats: one canonical, hashable form
    (a list and a tuple would digest differently)."""
    for name in fields:
        value = getattr(obj, name)
        if value is None or isinstance(value, int | float):
            if isinstance(value, int) and not isinstance(value, bool):
                msgspec.structs.force_setattr(obj, name, float(value))
            continue
        if depth == 1:
            fixed: Any = tuple(float(v) for v in value)
        else:
            fixed = tuple(tuple(float(v) for v in row) for row in value)
        msgspec.structs.force_setattr(obj, name, fixed)


def _check_length(seg: SegmentSpec, where: str) -> None:
    if (seg.duration_s is None) == (seg.n_samples is None):
        raise ValueError(f"{where}: give exactly one of duration_s or n_samples")
    if seg.n_samples is not None and (seg.n_samples < GRANULE or seg.n_samples % GRANULE):
        raise ValueError(
            f"{where}: n_samples = {seg.n_samples} must be a positive multiple of {GRANULE}"
        )
    if seg.duration_s is not None and not (math.isfinite(seg.duration_s) and seg.duration_s > 0):
        raise ValueError(f"{where}: duration_s must be a finite number > 0")


def _check_kind_fields(seg: SegmentSpec, where: str) -> None:
    if seg.freqs_hz is not None and seg.kind not in ("hold", "chirp"):
        raise ValueError(f"{where}: freqs_hz is for a hold (jump) or a chirp (target)")
    if seg.df_hz is not None and seg.kind not in ("chirp", "move"):
        raise ValueError(f"{where}: df_hz is for a chirp or a move")
    if seg.kind == "move" and seg.df_hz is None:
        raise ValueError(f"{where}: a move needs df_hz (the frequency change)")
    if seg.kind == "chirp" and (seg.freqs_hz is None) == (seg.df_hz is None):
        raise ValueError(f"{where}: a chirp needs freqs_hz (targets) or df_hz (change), one")
    if seg.kind == "ramp" and seg.amps is None and seg.amp_scale is None:
        raise ValueError(f"{where}: a ramp needs amps or amp_scale (its target)")


class ProgramConfig(pf.Config):
    """A whole program: starting tones per channel and the segments in play order."""

    tones: tuple[Tones, ...]
    segments: tuple[SegmentSpec, ...]
    sample_rate_hz: float = 625e6
    full_scale: float = 1.0
    on_clip: OnClip = "report"

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "tones", tuple(self.tones))
        msgspec.structs.force_setattr(self, "segments", tuple(self.segments))
        if not self.tones:
            raise ValueError("ProgramConfig.tones is empty; give one Tones entry per channel")
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0):
            raise ValueError("ProgramConfig.sample_rate_hz must be a finite number > 0")
        if not (math.isfinite(self.full_scale) and self.full_scale > 0):
            raise ValueError("ProgramConfig.full_scale must be a finite number > 0")
        if self.on_clip not in ("report", "error"):
            raise ValueError(f"ProgramConfig.on_clip {self.on_clip!r} is not report or error")
        if not 1 <= len(self.segments) <= MAX_SEGMENTS:
            raise ValueError(
                f"ProgramConfig.segments has {len(self.segments)} entries; a program has 1 to "
                f"{MAX_SEGMENTS} segments"
            )
        names = [s.name for s in self.segments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"segment names must be unique; repeated: {', '.join(dup)}")
        from .checks import check_program

        check_program(self)
        for check in PROGRAM_CHECKS:  # the resolver's range checks (registered by resolve.py)
            check(self)  # frequencies after moves, amplitudes after scaling, whole cycles


#: Checks a built ProgramConfig must pass beyond its fields, registered by the modules that own
#: them (resolve.py registers its range check; the package imports it with this module).
PROGRAM_CHECKS: list[Callable[[ProgramConfig], None]] = []


# -- resolved content -----------------------------------------------------------------------------


class CrestSignature(pf.Config):
    """What a crest-factor optimisation depends on: the tones' frequencies and amplitudes."""

    freqs_hz: tuple[float, ...]
    amps: tuple[int, ...]


class ChannelContent(pf.Config):
    """One channel of a resolved segment: per tone start/end frequency, amplitude and phase."""

    f0_hz: tuple[float, ...]
    f1_hz: tuple[float, ...]
    a0: tuple[int, ...]
    a1: tuple[int, ...]
    #: Start phases as phase words (2**32 per turn), added to the crest optimum if ``crest``.
    phase0: tuple[int, ...]
    #: Holds: whole cycles of each tone over the segment (frequency = cycles * fs / n).
    cycles: tuple[int, ...] | None = None
    crest: CrestSignature | None = None


class SegmentContent(pf.Config):
    """Everything that determines a segment's samples, absolute and quantised (its cache key)."""

    kind: Kind
    n_samples: int
    sample_rate_hz: float
    channels: tuple[ChannelContent, ...]


class StepTable(pf.Config):
    """The sequence: segment i plays ``loops[i]`` times (or until a trigger), then i+1; the
    last step returns to the first. ``offsets`` index the assembled sample memory."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    n_samples: tuple[int, ...]
    offsets: tuple[int, ...]
    loops: tuple[int, ...]
    trigger: tuple[bool, ...]
    channels: int
    sample_rate_hz: float
    full_scale: float
    on_clip: OnClip = "report"

    @property
    def total_samples(self) -> int:
        return sum(self.n_samples)

    @property
    def play_seconds(self) -> float:
        """Playback time of one pass through the sequence (loops counted, triggers not)."""
        return sum(n * k for n, k in zip(self.n_samples, self.loops)) / self.sample_rate_hz

    def rows(self) -> list[dict[str, Any]]:
        """One dict per step: segment, offset, length, loops, next step, trigger, last."""
        last = len(self.names) - 1
        return [
            {
                "step": i,
                "segment": name,
                "offset": self.offsets[i],
                "n_samples": self.n_samples[i],
                "loops": self.loops[i],
                "next": 0 if i == last else i + 1,
                "trigger": self.trigger[i],
                "last": i == last,
            }
            for i, name in enumerate(self.names)
        ]


class SegmentWave(msgspec.Struct, frozen=True):
    """A synthesised segment: int16 codes (channels, n) and what rounding/clipping did."""

    samples: np.ndarray
    clipped: tuple[int, ...]
    peak: tuple[int, ...]
    rms: tuple[float, ...]
