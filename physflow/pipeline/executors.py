"""Executors: where tasks run. The runner decides hits; executors only see misses.

An executor accepts tasks (``submit``) and hands back finished :class:`TaskOutcome` objects
(``wait``). Serial runs a task at once in the calling thread; threads keep values in memory;
processes (:mod:`.process_executor`) and dask (:mod:`.dask_executor`) send only the small task
description and get only the small outcome back: workers read and write the store directly.

Local executors honour stage ``resources`` as slots: a task starts only when its cpus, memory_gb
and gpus fit in what is free, so ``can_submit`` doubles as "this task starts now".
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..artifacts.store import Store
from .execute import Task, TaskOutcome, run_task

RESOURCE_NAMES = ("cpus", "memory_gb", "gpus")


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

    def need(self, task: Task) -> dict[str, float]:
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

    def can_submit(self, task: Task) -> bool:
        return True

    def submit(self, task: Task) -> None:
        raise NotImplementedError

    def wait(self) -> list[TaskOutcome]:
        """Block until at least one submitted task has finished; return all finished ones."""
        raise NotImplementedError

    def shutdown(self, cancel: bool = False) -> None:
        pass


class SerialExecutor(Executor):
    name = "serial"
    in_memory = True

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        super().start(store, memory)
        self._done: deque[TaskOutcome] = deque()

    def submit(self, task: Task) -> None:
        self._done.append(run_task(task, self.store, self.memory, keep_values=True))

    def wait(self) -> list[TaskOutcome]:
        done = list(self._done)
        self._done.clear()
        return done


class ThreadExecutor(Executor):
    """A thread pool; values stay in memory. Good for stages that release the GIL (numpy)."""

    name = "threads"
    in_memory = True

    def __init__(
        self, workers: int | None = None, resources: Mapping[str, float] | None = None
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.resources = dict(resources or default_capacity(self.workers))

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        super().start(store, memory)
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="physflow")
        self._futures: dict[cf.Future[TaskOutcome], dict[str, float]] = {}
        self._slots = Slots(self.resources)

    def can_submit(self, task: Task) -> bool:
        return len(self._futures) < self.workers and self._slots.fits(self._slots.need(task))

    def submit(self, task: Task) -> None:
        need = self._slots.need(task)
        self._slots.take(need)
        future = self._pool.submit(run_task, task, self.store, self.memory, True)
        self._futures[future] = need

    def wait(self) -> list[TaskOutcome]:
        done, _ = cf.wait(self._futures, return_when=cf.FIRST_COMPLETED)
        out = []
        for future in done:
            self._slots.give(self._futures.pop(future))
            out.append(future.result())
        return out

    def shutdown(self, cancel: bool = False) -> None:
        # Threads cannot be stopped: on cancel, queued work is dropped and running stages are
        # left to finish in the background (their results still land in the store safely).
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


def make_executor(executor: Any, workers: int | None) -> Executor:
    if isinstance(executor, Executor):
        return executor
    if executor in (None, "serial"):
        return SerialExecutor()
    if executor == "threads":
        return ThreadExecutor(workers)
    if executor == "processes":
        from .process_executor import ProcessExecutor

        return ProcessExecutor(workers)
    if executor == "dask":
        from .dask_executor import DaskExecutor

        return DaskExecutor(workers=workers, close_after_run=True)
    raise ValueError(
        f"unknown executor {executor!r}; use 'serial', 'threads', 'processes', 'dask' or a "
        "physflow.DaskExecutor(...)"
    )
