"""The registered stages: ``awg.program`` (resolve), ``awg.segment`` (synthesise one segment),
``awg.content`` (a resolved segment as a node) and ``awg.assemble`` (samples + step table).

A pipeline is ``program`` -> one ``segment`` node per segment (node id = segment name, input
``content`` = ``program.sNN``) -> ``assemble``. A segment node's key is its stage plus the digest
of its resolved content, so unchanged segments stay hits when anything else in the program
changes (the ``program`` node itself re-runs; it only does arithmetic).
"""

from __future__ import annotations

import inspect
import threading
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

import physflow as pf

from . import checks, crest, model, resolve, synth
from .model import (
    MAX_SEGMENTS,
    SLOTS,
    ProgramConfig,
    SegmentContent,
    SegmentWave,
    StepTable,
)


def _source_token(*modules: Any) -> str:
    """The text of the modules whose code shapes results (any edit is a new fingerprint)."""
    return pf.digest(tuple(Path(m.__file__).read_text(encoding="utf-8") for m in modules))


KERNEL_SOURCE = _source_token(synth, crest, model)
RESOLVER_SOURCE = _source_token(resolve, checks, model)


class SynthConfig(pf.Config):
    """How a segment is computed. GPU results are keyed apart (float rounding may differ)."""

    array_module: Literal["numpy", "cupy"] = "numpy"

    def __post_init__(self) -> None:
        if self.array_module not in ("numpy", "cupy"):
            raise ValueError(f"SynthConfig.array_module {self.array_module!r}: numpy or cupy")


# -- hand-off from the in-process compiler --------------------------------------------------------

_handoff_lock = threading.Lock()
_handoff: dict[str, SegmentWave] = {}


def offer(token: str, wave: SegmentWave) -> None:
    """Make a wave the compiler already synthesised available to the next ``awg.segment`` run
    of the same (content, config) in this process, so storing it does not compute it again."""
    with _handoff_lock:
        _handoff[token] = wave


def withdraw(token: str) -> None:
    with _handoff_lock:
        _handoff.pop(token, None)


def handoff_token(content: SegmentContent, cfg: SynthConfig) -> str:
    return pf.digest((content, cfg))


def synthesise_wave(content: SegmentContent, cfg: SynthConfig, ctx: Any = None) -> SegmentWave:
    """One segment as a SegmentWave (host numpy samples); crest optima via ``ctx.memo``."""
    xp = synth.array_module(cfg.array_module)
    samples, clipped, peak, rms = synth.synthesise(
        content, xp, lambda sig, fs: crest.crest_phases(sig, fs, ctx)
    )
    return SegmentWave(samples=synth.to_host(samples), clipped=clipped, peak=peak, rms=rms)


# -- stages ---------------------------------------------------------------------------------------


@pf.stage(version="1", outputs=["table", *SLOTS], deps=[RESOLVER_SOURCE, MAX_SEGMENTS])
def program(cfg: ProgramConfig) -> dict[str, Any]:
    """Resolve the program: the step table, and segment i's content in slot ``s{i:02d}``."""
    table, contents = resolve.resolve(cfg)
    out: dict[str, Any] = {"table": table}
    for i, slot in enumerate(SLOTS):
        out[slot] = contents[i] if i < len(contents) else None
    return out


@pf.stage(version="1")
def content(cfg: SegmentContent) -> SegmentContent:
    """A resolved segment as a node's value (the compiler feeds ``awg.segment`` this way; the
    value, and so the segment's key, is the same as from a ``program`` slot)."""
    return cfg


@pf.stage(version="1", deps=[KERNEL_SOURCE, synthesise_wave])
def segment(cfg: SynthConfig, content: Any, *, ctx: pf.StageContext) -> SegmentWave:
    """Synthesise one segment (``content``: a SegmentContent from ``program.sNN``)."""
    if not isinstance(content, SegmentContent):
        raise TypeError(
            f"awg.segment: input 'content' is {type(content).__name__}, not a SegmentContent; "
            "wire it to a used slot of awg.program ('program.s00', ...)"
        )
    with _handoff_lock:
        ready = _handoff.pop(handoff_token(content, cfg), None)
    return ready if ready is not None else synthesise_wave(content, cfg, ctx)


def _check_slots(table: Any, slots: dict[str, Any]) -> list[SegmentWave]:
    if not isinstance(table, StepTable):
        raise TypeError("awg.assemble: input 'table' must be 'program.table'")
    n = len(table.names)
    waves = []
    for i, name in enumerate(table.names):
        wave = slots.get(SLOTS[i])
        if not isinstance(wave, SegmentWave):
            raise ValueError(
                f"awg.assemble: segment '{name}' (slot {SLOTS[i]}) is not wired; add a node "
                f"'{name}: {{stage: awg.segment, inputs: {{content: program.{SLOTS[i]}}}}}' "
                f"and 'assemble.inputs.{SLOTS[i]}: {name}'"
            )
        if wave.samples.shape != (table.channels, table.n_samples[i]):
            raise ValueError(
                f"awg.assemble: slot {SLOTS[i]} holds {wave.samples.shape} samples but segment "
                f"'{name}' has ({table.channels}, {table.n_samples[i]}); check the wiring"
            )
        waves.append(wave)
    extra = [s for s in SLOTS[n:] if slots.get(s) is not None]
    if extra:
        raise ValueError(
            f"awg.assemble: slots {', '.join(extra)} are wired but the program has {n} segments"
        )
    return waves


def clip_report(table: StepTable, clipped: list[tuple[int, ...]]) -> dict[str, int]:
    """Clipped samples per segment (only segments that clip); warns or raises per on_clip."""
    bad = {name: sum(c) for name, c in zip(table.names, clipped) if sum(c)}
    if bad:
        text = ", ".join(f"{k}: {v}" for k, v in bad.items())
        message = f"AWG program clips (samples beyond +-32767 codes per segment): {text}"
        if table.on_clip == "error":
            raise ValueError(message + "; lower the amplitudes or use phase 'optimise'")
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return bad


def assemble(table: Any, **slots: Any) -> dict[str, Any]:
    """The sample memory (int16, channels x total samples, segments in order), the step table
    and a report (clipping per segment, peak codes per channel, play time)."""
    waves = _check_slots(table, slots)
    samples = np.concatenate([w.samples for w in waves], axis=1)
    clipped = clip_report(table, [w.clipped for w in waves])
    report = {
        "segments": len(waves),
        "total_samples": int(samples.shape[1]),
        "play_seconds": table.play_seconds,
        "clipped": clipped,
        "clipped_total": int(sum(clipped.values())),
        "peak": [int(max(w.peak[ch] for w in waves)) for ch in range(table.channels)],
    }
    return {"samples": samples, "steps": table, "report": report}


assemble.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("table", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(s, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for s in SLOTS]
)
assemble = pf.stage(  # type: ignore[assignment]
    version="1",
    outputs=["samples", "steps", "report"],
    deps=[_check_slots, clip_report, MAX_SEGMENTS],
)(assemble)
