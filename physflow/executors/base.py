"""The executor interface: jobs in (``submit``), finished :class:`TaskOutcome` objects out
(``wait``). The runner decides hits; executors only see misses.

Serial (:mod:`.local`) runs a job at once in the calling thread; threads keep values in memory;
processes (:mod:`.processes`) and dask (:mod:`.dask`) send only the small pickled job and get
only the small outcome back: workers read and write the store directly.

Local executors honour stage ``resources`` as slots: a task starts only when its cpus, memory_gb
and gpus fit in what is free, so ``can_submit`` doubles as "this task starts now".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..artifacts.store import Store

RESOURCE_NAMES = ("cpus", "memory_gb", "gpus")


@dataclass
class TaskOutcome:
    """What running one job produced: its record, or why it failed."""

    uid: str
    record: Any
    error: str | None = None
    traceback: str | None = None
    attempts: int = 1
    started: float = 0.0
    duration_s: float = 0.0
    values: dict[str, Any] | None = None  # only for in-memory executors
    warnings: list[str] = field(default_factory=list)
    #: Errors of failed attempts that were retried (the runner reports them as "retry" events).
    retry_errors: list[str] = field(default_factory=list)
    #: Digest of a corrupt input object: the runner quarantines it and recomputes its producer.
    corrupt: str | None = None
    #: The record was found, computed by another worker that held the key's claim (a hit).
    found: bool = False


class Job(Protocol):
    """What an executor runs (the runner's :class:`~physflow.pipeline.task.Task`)."""

    uid: str
    resources: Mapping[str, float]

    @property
    def label(self) -> str:
        """How messages name the job (e.g. "node 'rx'")."""
        ...

    @property
    def retries(self) -> int:
        """How often a job whose worker died may be started again."""
        ...

    def preflight(self) -> str | None:
        """Why workers in other processes could not load this job (None: they can)."""
        ...

    def __call__(self, store: Store, memory: Any, keep_values: bool) -> TaskOutcome: ...


def total_memory_gb() -> float:
    """Physical memory of this machine in GB (0 when unknown: memory is then not limited)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return 0.0


def visible_gpus() -> int:
    """GPUs named in CUDA_VISIBLE_DEVICES (0 when unset: gpu requests are then not limited)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if not value or value == "-1":
        return 0
    return len([d for d in value.split(",") if d.strip()])


def default_capacity(workers: int) -> dict[str, float]:
    return {"cpus": float(workers), "memory_gb": total_memory_gb(), "gpus": float(visible_gpus())}


class Slots:
    """Resource accounting for local executors.

    A request larger than the capacity is clamped to the capacity (the task then runs alone)
    instead of waiting forever; a resource with capacity 0 is unknown here and not limited.
    """

    def __init__(self, capacity: Mapping[str, float]) -> None:
        unknown = set(capacity) - set(RESOURCE_NAMES)
        if unknown:
            raise ValueError(
                f"unknown executor resource(s) {sorted(unknown)}; use {', '.join(RESOURCE_NAMES)}"
            )
        self.capacity = {k: float(v) for k, v in capacity.items() if v and v > 0}
        self.used = dict.fromkeys(self.capacity, 0.0)

    def need(self, task: Job) -> dict[str, float]:
        resources = task.resources
        need = {"cpus": min(float(resources.get("cpus", 1)), self.capacity.get("cpus", 1.0))}
        for name, amount in resources.items():
            if name != "cpus" and name in self.capacity:
                need[name] = min(float(amount), self.capacity[name])
        return need

    def fits(self, need: Mapping[str, float]) -> bool:
        return all(
            self.used[k] + v <= self.capacity[k] + 1e-9 for k, v in need.items() if k in self.used
        )

    def take(self, need: Mapping[str, float]) -> None:
        for k, v in need.items():
            if k in self.used:
                self.used[k] += v

    def give(self, need: Mapping[str, float]) -> None:
        for k, v in need.items():
            if k in self.used:
                self.used[k] -= v


class Executor:
    """Base class. ``in_memory`` executors may pass values between nodes without the store."""

    name = "base"
    in_memory = False
    #: True when a submitted task starts at once (slots were free). Otherwise the executor
    #: reports starts itself through :meth:`started` (when ``want_starts`` is set).
    starts_on_submit = True
    want_starts = False

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        self.store = store
        self.memory = memory

    def started(self) -> list[str]:
        """uids of tasks that started since the last call (executors with a queue of their own)."""
        return []

    def can_submit(self, task: Job) -> bool:
        return True

    def submit(self, task: Job) -> None:
        raise NotImplementedError

    def drain(self) -> list[TaskOutcome]:
        """Outcomes of jobs that already finished, without waiting (used after Ctrl-C, so
        finished work is recorded as finished)."""
        return []

    def wait(self) -> list[TaskOutcome]:
        """Block until at least one submitted task has finished; return all finished ones."""
        raise NotImplementedError

    def shutdown(self, cancel: bool = False) -> None:
        pass
