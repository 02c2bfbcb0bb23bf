"""The parts of a stage's fingerprint (version, source, dependencies), recorded in manifests so
that ``physflow explain`` can say *what* about a stage changed, not only that its fingerprint
did. Computed once per stage object per process (parsing source costs milliseconds)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable
from typing import Any

from ..core.fingerprint import dependency_token, normalised_source, stage_fingerprint
from ..core.hashing import digest
from .schema import StageInfo

_CACHE: weakref.WeakKeyDictionary[Any, StageInfo] = weakref.WeakKeyDictionary()


def _short(text: str) -> str:
    return digest(text)[:19]  # "b3:" + 16 hex: enough to tell versions apart in a report


def _dep_label(dep: Any, i: int) -> str:
    if hasattr(dep, "fingerprint") and hasattr(dep, "func"):
        return f"stage:{dep.name}"
    qualname = getattr(dep, "__qualname__", None)
    if isinstance(qualname, str) and not isinstance(dep, str | bytes | int | float):
        return f"{getattr(dep, '__module__', '?')}:{qualname}"
    if isinstance(dep, dict) and len(dep) == 1:
        return f"value:{next(iter(dep))}"
    return f"value{i}"


def stage_info(stage: Any) -> StageInfo | None:
    """The fingerprint parts of ``stage`` (None when they cannot be derived)."""
    try:
        return _CACHE[stage]
    except (KeyError, TypeError):
        pass
    try:
        source = normalised_source(stage.func)
        tokens = [dependency_token(dep) for dep in stage.deps]
    except Exception:  # no source and no code object: nothing finer than the fingerprint
        return None
    labels: dict[str, str] = {}
    for i, (dep, token) in enumerate(zip(stage.deps, tokens)):
        label = _dep_label(dep, i)
        labels[label if label not in labels else f"{label}#{i}"] = _short(token)
    again = stage_fingerprint(stage.name, stage.version, stage.func, stage.deps, stage.outputs)
    info = StageInfo(
        name=stage.name,
        version=stage.version,
        source=_short(source),
        deps=labels,
        outputs=list(stage.outputs) if stage.outputs is not None else None,
        stale=again != stage.fingerprint,
    )
    with contextlib.suppress(TypeError):  # not weak-referenceable: recomputed next time
        _CACHE[stage] = info
    return info


def stages_of(nodes: Iterable[Any]) -> dict[str, StageInfo]:
    """fingerprint -> parts for the stages of plan nodes (each stage once)."""
    seen: dict[int, None] = {}
    found: dict[str, StageInfo] = {}
    for node in nodes:
        stage = node.stage
        if id(stage) in seen:
            continue
        seen[id(stage)] = None
        info = stage_info(stage)
        if info is not None and stage.fingerprint:
            found[stage.fingerprint] = info
    return found
