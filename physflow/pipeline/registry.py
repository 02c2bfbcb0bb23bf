"""Stages by registered name (entry point group ``physflow.stages``), so YAML can say
``stage: demo.tone`` instead of an import path.

Packs declare their stages in ``pyproject.toml``::

    [project.entry-points."physflow.stages"]
    "demo.tone" = "physflow.stages.demo:tone"

Entry points are read once per process and imported only when a name is used, so listing the
registry never imports a pack's heavy dependencies. :func:`register_stage` adds names at run
time (notebooks, tests) without packaging.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ..core import suggest
from .stage import Stage, StageDefinitionError, resolve_stage_path

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "physflow.stages"

_RUNTIME: dict[str, Stage | str] = {}


class UnknownStageError(LookupError):
    """No stage is registered under a name; ``suggestions`` holds the closest valid names."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"no stage registered as '{name}'.{hint}")


@functools.lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def registered_names() -> dict[str, str]:
    """Every registered name -> its import path (``module:attr``), without importing anything."""
    names = {name: ep.value for name, ep in _entry_points().items()}
    for name, target in _RUNTIME.items():
        names[name] = target if isinstance(target, str) else target.name
    return dict(sorted(names.items()))


def register_stage(name: str, stage: Stage | str) -> None:
    """Register ``stage`` (or an import path ``module:attr``) under ``name`` for this process."""
    if not isinstance(stage, Stage | str):
        raise StageDefinitionError(f"register_stage('{name}', ...) needs a physflow stage")
    _RUNTIME[name] = stage


def unregister_stage(name: str) -> None:
    _RUNTIME.pop(name, None)


def closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Registered names close to ``name`` (a looser cutoff: dotted names differ in parts)."""
    return suggest.closest(name, candidates, n=n, cutoff=0.5)


def resolve_registered(name: str) -> Stage:
    """The stage registered as ``name``; :class:`UnknownStageError` (with suggestions) if none."""
    target = _RUNTIME.get(name)
    if isinstance(target, Stage):
        return target
    if target is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise UnknownStageError(name, closest(name, list(registered_names())))
        target = ep.value
    return resolve_stage_path(target)
