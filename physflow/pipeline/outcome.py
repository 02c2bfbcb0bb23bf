"""What running a plan produced: per-node states and the run's outcome (shared by runs and
scans, read by the manifest writer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.records import ActionRecord, OutputEntry
from ..executors.base import TaskOutcome
from .plan import PlanNode


@dataclass(slots=True)
class NodeState:
    """What the runner learned about one plan node."""

    status: str = "pending"  # pending | hit | miss | failed | skipped | cancelled
    key: str | None = None
    input_digests: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, OutputEntry] | None = None
    record: ActionRecord | None = None
    outcome: TaskOutcome | None = None
    error: str | None = None
    #: This node's manifest record (JSON), when a plan record already had it.
    manifest_node: bytes | None = None


@dataclass
class RunOutcome:
    """Raw result of executing a plan (shared by runs and scans)."""

    nodes: dict[str, PlanNode]
    states: dict[str, NodeState]
    started: float
    finished: float
    interrupted: bool
    executor: str
    memory: dict[str, Any]
    #: Digest of the plan (see :func:`~physflow.pipeline.plan.plan_digest`).
    plan_digest: str | None = None
    #: Served whole from a plan record.
    replayed: bool = False

    @property
    def complete(self) -> bool:
        """Every node hit or ran: the run can be replayed from a plan record."""
        return not self.interrupted and all(
            s.status in ("hit", "miss") for s in self.states.values()
        )
