"""Node events: the one interface through which runs report progress (CLI, notebooks, tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["queued", "started", "hit", "done", "failed", "skipped", "retry"]


@dataclass(frozen=True)
class NodeEvent:
    kind: EventKind
    uid: str
    node_id: str
    stage: str
    total: int
    duration_s: float | None = None
    error: str | None = None


ProgressCallback = Callable[[NodeEvent], None]
