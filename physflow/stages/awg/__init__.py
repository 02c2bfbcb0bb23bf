"""AWG stage pack: waveform programs compiled segment by segment (see docs/awg.md).

``Program`` builds a program (``hold``, ``ramp``, ``chirp``, ``move``, as methods or as module
functions making segments for ``Program(tones, segments=[...])``; phase modes ``continue``,
``optimise``, ``manual``); ``Program.pipeline()`` or ``configs/awg_program.yaml`` compile it as a
physflow pipeline (``awg.program`` -> one ``awg.segment`` node per segment -> ``awg.assemble``);
``Compiler(store=...).prepare_point(program)`` is the lab loop's entry point. Segment keys come
from resolved, quantised content, so a scan point recompiles only the segments it changes.
"""

from __future__ import annotations

from .builder import Program, chirp, hold, move, ramp, segment_spec
from .compiler import Compiler, PointReport
from .crest import crest_factor
from .model import (
    FULL_CODE,
    GRANULE,
    MAX_SEGMENTS,
    ChannelContent,
    CrestSignature,
    ProgramConfig,
    SegmentContent,
    SegmentSpec,
    SegmentWave,
    StepTable,
    Tones,
)
from .resolve import Resolved, amplitude_codes, resolve
from .spec import build_pipeline, check_pipeline, load_program, spec_yaml
from .stages import SynthConfig, assemble, content, program, segment
from .waveform import Waveform

__all__ = [
    "FULL_CODE",
    "GRANULE",
    "MAX_SEGMENTS",
    "ChannelContent",
    "Compiler",
    "CrestSignature",
    "PointReport",
    "Program",
    "ProgramConfig",
    "Resolved",
    "SegmentContent",
    "SegmentSpec",
    "SegmentWave",
    "StepTable",
    "SynthConfig",
    "Tones",
    "Waveform",
    "amplitude_codes",
    "assemble",
    "build_pipeline",
    "check_pipeline",
    "chirp",
    "content",
    "crest_factor",
    "hold",
    "load_program",
    "move",
    "program",
    "ramp",
    "resolve",
    "segment",
    "segment_spec",
    "spec_yaml",
]
