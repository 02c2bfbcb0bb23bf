"""A small fluent builder for AWG programs (``Program``) -> ``ProgramConfig``.

    prog = (
        Program([Tones(freqs_hz=[88e6, 90e6], amps=[0.2, 0.2])] * 2)
        .hold("load", 40e-6, phase="optimise")
        .ramp("dim", 20e-6, amp_scale=0.5)
        .move("shift", 100e-6, df_hz=1e6)
        .hold("image", 40e-6, loops=4)
    )
    prog.pipeline().run(store=...)        # or Compiler(store=...).prepare_point(prog)

Every method validates its segment at once (a ``ValueError`` names the segment and the field).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import numpy as np

from .model import ProgramConfig, SegmentSpec, Tones


def _rows(value: Any) -> Any:
    """A number stays a number; nested sequences (or arrays) become lists of lists of floats."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return float(value)
    rows = [np.asarray(row, dtype=np.float64).ravel().tolist() for row in value]
    return rows


def _tones(spec: Any) -> Tones:
    if isinstance(spec, Tones):
        return spec
    if isinstance(spec, dict):
        return msgspec.convert(spec, Tones, strict=False)
    freqs, amps, *rest = spec
    return Tones(
        freqs_hz=np.asarray(freqs, dtype=np.float64).ravel().tolist(),
        amps=np.asarray(amps, dtype=np.float64).ravel().tolist(),
        phases_rad=np.asarray(rest[0], dtype=np.float64).ravel().tolist() if rest else None,
    )


class Program:
    """Segments in play order over per-channel starting tones (see docs/awg.md)."""

    def __init__(
        self,
        tones: Iterable[Any],
        *,
        sample_rate_hz: float = 625e6,
        full_scale: float = 1.0,
        on_clip: str = "report",
        segments: Sequence[SegmentSpec] = (),
    ) -> None:
        self.tones = [_tones(t) for t in tones]
        self.sample_rate_hz = float(sample_rate_hz)
        self.full_scale = float(full_scale)
        self.on_clip = on_clip
        self.segments: list[SegmentSpec] = list(segments)
        self._config: ProgramConfig | None = None

    @classmethod
    def from_config(cls, cfg: ProgramConfig) -> Program:
        prog = cls(
            cfg.tones,
            sample_rate_hz=cfg.sample_rate_hz,
            full_scale=cfg.full_scale,
            on_clip=cfg.on_clip,
            segments=cfg.segments,
        )
        prog._config = cfg
        return prog

    # -- segments ---------------------------------------------------------------------------------

    def add(self, kind: str, name: str, duration_s: float | None = None, **fields: Any) -> Program:
        """Append a segment of ``kind``; the named methods below are shorthands."""
        self.segments.append(segment_spec(kind, name, duration_s, **fields))
        self._config = None
        return self

    def hold(self, name: str, duration_s: float | None = None, **fields: Any) -> Program:
        """Constant tones (snapped to whole cycles). ``freqs_hz``/``amps`` jump to new values;
        ``loops`` repeats it, ``trigger`` waits for a trigger while looping it."""
        return self.add("hold", name, duration_s, **fields)

    def ramp(self, name: str, duration_s: float | None = None, **fields: Any) -> Program:
        """Linear amplitude ramp to ``amps`` (or ``amp_scale`` times the current amplitudes)."""
        return self.add("ramp", name, duration_s, **fields)

    def chirp(self, name: str, duration_s: float | None = None, **fields: Any) -> Program:
        """Linear frequency sweep to ``freqs_hz`` (absolute) or by ``df_hz``."""
        return self.add("chirp", name, duration_s, **fields)

    def move(self, name: str, duration_s: float | None = None, **fields: Any) -> Program:
        """Minimum-jerk frequency change by ``df_hz`` (tweezer moves: smooth start and end)."""
        return self.add("move", name, duration_s, **fields)

    def insert(
        self, index: int, kind: str, name: str, duration_s: float | None = None, **fields: Any
    ) -> Program:
        """A copy with a new segment at position ``index``."""
        segs = list(self.segments)
        segs.insert(index, segment_spec(kind, name, duration_s, **fields))
        return self._with(segs)

    def without(self, name: str) -> Program:
        """A copy without segment ``name``."""
        self._index(name)
        return self._with([s for s in self.segments if s.name != name])

    def replace(self, name: str, **changes: Any) -> Program:
        """A copy with fields of segment ``name`` changed (a scan point)."""
        i = self._index(name)
        segs = list(self.segments)
        fixed = {k: _rows(v) if k in _PER_TONE else v for k, v in changes.items()}
        segs[i] = msgspec.structs.replace(segs[i], **fixed)
        return self._with(segs)

    def _index(self, name: str) -> int:
        for i, s in enumerate(self.segments):
            if s.name == name:
                return i
        names = ", ".join(s.name for s in self.segments)
        raise KeyError(f"no segment '{name}' in the program; segments: {names}")

    def _with(self, segments: list[SegmentSpec]) -> Program:
        return Program(
            self.tones,
            sample_rate_hz=self.sample_rate_hz,
            full_scale=self.full_scale,
            on_clip=self.on_clip,
            segments=segments,
        )

    # -- products ---------------------------------------------------------------------------------

    @property
    def config(self) -> ProgramConfig:
        """The validated ``ProgramConfig`` (what the ``program`` node of a pipeline holds)."""
        if self._config is None:
            self._config = ProgramConfig(
                tones=list(self.tones),
                segments=list(self.segments),
                sample_rate_hz=self.sample_rate_hz,
                full_scale=self.full_scale,
                on_clip=self.on_clip,  # type: ignore[arg-type]
            )
        return self._config

    def resolve(self) -> Any:
        """Step table and resolved content of every segment (see ``resolve.resolve``)."""
        from .resolve import resolve

        return resolve(self.config)

    def pipeline(self, name: str = "awg_program", **options: Any) -> Any:
        """The program as a physflow Pipeline (program -> one node per segment -> assemble)."""
        from .spec import build_pipeline

        return build_pipeline(self.config, name=name, **options)

    def to_yaml(self, name: str = "awg_program", description: str | None = None) -> str:
        """A YAML spec of this program that ``physflow run`` and ``pf.load_spec`` accept."""
        from .spec import spec_yaml

        return spec_yaml(self.config, name=name, description=description)

    def __repr__(self) -> str:
        kinds = " ".join(f"{s.kind}:{s.name}" for s in self.segments)
        return f"<awg.Program {len(self.tones)} channels, {len(self.segments)} segments: {kinds}>"


_PER_TONE = ("phases_rad", "freqs_hz", "df_hz", "amps")


def segment_spec(
    kind: str, name: str, duration_s: float | None = None, **fields: Any
) -> SegmentSpec:
    """A validated ``SegmentSpec`` (per-tone values may be numbers, lists or numpy arrays)."""
    unknown = set(fields) - set(SegmentSpec.__struct_fields__)
    if unknown:
        raise TypeError(
            f"segment '{name}': unknown field(s) {', '.join(sorted(unknown))}; fields: "
            f"{', '.join(f for f in SegmentSpec.__struct_fields__ if f not in ('name', 'kind'))}"
        )
    values = {k: _rows(v) if k in _PER_TONE else v for k, v in fields.items()}
    if values.get("freqs_hz") is not None and isinstance(values["freqs_hz"], float):
        raise ValueError(f"segment '{name}': freqs_hz needs one list per channel")
    return SegmentSpec(name=name, kind=kind, duration_s=duration_s, **values)  # type: ignore[arg-type]


def hold(name: str, duration_s: float | None = None, **fields: Any) -> SegmentSpec:
    """A ``hold`` segment, for ``Program(tones, segments=[hold(...), move(...), ...])``."""
    return segment_spec("hold", name, duration_s, **fields)


def ramp(name: str, duration_s: float | None = None, **fields: Any) -> SegmentSpec:
    """A linear amplitude ramp segment (see :meth:`Program.ramp`)."""
    return segment_spec("ramp", name, duration_s, **fields)


def chirp(name: str, duration_s: float | None = None, **fields: Any) -> SegmentSpec:
    """A linear frequency sweep segment (see :meth:`Program.chirp`)."""
    return segment_spec("chirp", name, duration_s, **fields)


def move(name: str, duration_s: float | None = None, **fields: Any) -> SegmentSpec:
    """A minimum-jerk frequency move segment (see :meth:`Program.move`)."""
    return segment_spec("move", name, duration_s, **fields)
