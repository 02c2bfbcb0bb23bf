"""What running a plan produced: per-node states and the run's outcome (shared by runs and
scans, read by the manifest writer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.keys import combined_outputs_digest
from ..core.records import ActionRecord, OutputEntry, PlanRecord
from ..core.refs import is_single
from ..executors.base import TaskOutcome
from .plan import PlanNode
from .task import TaskInput


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


def input_token(state: NodeState, ref_output: str | None) -> str:
    """The digest by which an input enters the key (all outputs combined for a bare ref)."""
    if state.outputs is None:  # an invariant: a key is never made from an input not known
        raise RuntimeError(f"internal error: an input's outputs are unknown ({state.status})")
    outputs = state.outputs
    if ref_output is not None:
        return outputs[ref_output].digest
    if is_single(outputs):
        return outputs["value"].digest
    return combined_outputs_digest({k: e.digest for k, e in outputs.items()})


def task_input(state: NodeState, ref_output: str | None) -> TaskInput:
    """How a task finds an input's value (built only for misses)."""
    outputs = state.outputs or {}
    if ref_output is not None:
        return TaskInput(entry=outputs[ref_output])
    if is_single(outputs):
        return TaskInput(entry=outputs["value"])
    return TaskInput(entries=dict(outputs))


def replayed_states(record: PlanRecord) -> dict[str, NodeState]:
    """States of a run served whole from a (checked) plan record."""
    return {
        e.uid: NodeState(
            "hit", e.key, e.input_digests, e.record.outputs, e.record, None, None, e.manifest_node
        )
        for e in record.nodes
    }
