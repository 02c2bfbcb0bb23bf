"""Programs as pipelines and YAML specs, and a check that a spec's wiring matches its program.

Graph: ``program`` (awg.program, config = the ProgramConfig) -> one ``awg.segment`` node per
segment, whose id is the segment's name and whose input is ``program.sNN`` -> ``assemble``
(inputs ``table: program.table`` and ``sNN: <segment>``). ``build_pipeline`` and ``spec_yaml``
produce exactly this; ``check_pipeline`` verifies a hand-edited spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

import physflow as pf

from . import stages
from .model import SLOTS, ProgramConfig


def build_pipeline(
    cfg: ProgramConfig, name: str = "awg_program", synth: stages.SynthConfig | None = None
) -> pf.Pipeline:
    """The pipeline for ``cfg``: program -> segments (ids = names) -> assemble."""
    p = pf.Pipeline(name)
    p.add("program", stages.program, cfg)
    wiring = {}
    for i, seg in enumerate(cfg.segments):
        p.add(
            seg.name, stages.segment, synth or stages.SynthConfig(), content=f"program.{SLOTS[i]}"
        )
        wiring[SLOTS[i]] = seg.name
    p.add("assemble", stages.assemble, table="program.table", **wiring)
    return p


def check_pipeline(p: pf.Pipeline) -> pf.Pipeline:
    """Every segment of the ``program`` node has its own ``awg.segment`` node, named after it
    and wired to its slot, and ``assemble`` takes them in order. Raises ValueError otherwise."""
    prog = p.nodes.get("program")
    if prog is None or prog.stage is not stages.program:
        raise ValueError("an AWG pipeline needs a node 'program' with stage awg.program")
    cfg: ProgramConfig = prog.config
    asm = p.nodes.get("assemble")
    if asm is None or asm.stage is not stages.assemble:
        raise ValueError("an AWG pipeline needs a node 'assemble' with stage awg.assemble")
    for i, seg in enumerate(cfg.segments):
        node = p.nodes.get(seg.name)
        want = f"program.{SLOTS[i]}"
        if node is None or node.stage is not stages.segment:
            raise ValueError(
                f"segment '{seg.name}' (#{i}) has no node; add '{seg.name}: {{stage: awg.segment,"
                f" inputs: {{content: {want}}}}}'"
            )
        got = str(node.inputs.get("content"))
        if got != want:
            raise ValueError(
                f"node '{seg.name}' reads {got} but segment '{seg.name}' is slot {SLOTS[i]}; "
                f"wire 'content: {want}'"
            )
        wired = asm.inputs.get(SLOTS[i])
        if wired is None or wired.node != seg.name:
            raise ValueError(f"assemble input {SLOTS[i]} must be '{seg.name}', got {wired}")
    extra = [s for s in SLOTS[len(cfg.segments) :] if s in asm.inputs]
    if extra:
        raise ValueError(f"assemble wires {', '.join(extra)} beyond the program's segments")
    return p


def load_program(path: str | Path, overrides: dict[str, Any] | None = None) -> pf.Pipeline:
    """``pf.load_spec`` plus ``check_pipeline``: a YAML program whose nodes match its segments."""
    return check_pipeline(pf.load_spec(path, overrides))


def _num(x: Any) -> str:
    """A YAML number PyYAML reads back as the same float (it needs a '.' before an exponent)."""
    if isinstance(x, bool) or not isinstance(x, float):
        return repr(x)
    text = repr(x)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp}"
    return text


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return _num(value)


def spec_yaml(cfg: ProgramConfig, name: str = "awg_program", description: str | None = None) -> str:
    """A YAML spec for ``cfg`` (segments one per line, non-default fields only)."""
    lines = [f"name: {name}"]
    if description:
        lines.append(f"description: {description}")
    lines += ["stages:", "  program:", "    stage: awg.program", "    config:"]
    for key in ("sample_rate_hz", "full_scale", "on_clip"):
        lines.append(f"      {key}: {_flow(getattr(cfg, key))}")
    lines.append("      tones:")
    for t in cfg.tones:
        d = {k: v for k, v in msgspec.to_builtins(t).items() if v is not None}
        lines.append(f"        - {_flow(d)}")
    lines.append("      segments:")
    for seg in cfg.segments:
        d = msgspec.to_builtins(seg)  # omits nothing: drop the defaults by hand
        default = {"phase": "continue", "loops": 1, "trigger": False}
        d = {k: v for k, v in d.items() if v is not None and default.get(k, object()) != v}
        lines.append(f"        - {_flow(d)}")
    for i, seg in enumerate(cfg.segments):
        lines.append(
            f"  {seg.name}: {{stage: awg.segment, inputs: {{content: program.{SLOTS[i]}}}}}"
        )
    lines.append("  assemble:")
    lines.append("    stage: awg.assemble")
    lines.append("    inputs:")
    lines.append("      table: program.table")
    for i, seg in enumerate(cfg.segments):
        lines.append(f"      {SLOTS[i]}: {seg.name}")
    return "\n".join(lines) + "\n"
