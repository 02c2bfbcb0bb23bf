"""Executors: where tasks run. The runner decides hits; executors only see misses.

An executor accepts tasks (``submit``) and hands back finished :class:`TaskOutcome` objects
(``wait``). Serial runs a task at once in the calling thread; threads keep values in memory.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections import deque
from typing import Any

from ..artifacts.store import Store
from .execute import Task, TaskOutcome, run_task


class Executor:
    """Base class. ``in_memory`` executors may pass values between nodes without the store."""

    name = "base"
    in_memory = False

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        self.store = store
        self.memory = memory

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
    name = "threads"
    in_memory = True

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        super().start(store, memory)
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="physflow")
        self._futures: set[cf.Future[TaskOutcome]] = set()
        self._cpus_in_use = 0.0

    def can_submit(self, task: Task) -> bool:
        need = min(float(task.resources.get("cpus", 1)), self.workers)
        return self._cpus_in_use + need <= self.workers

    def submit(self, task: Task) -> None:
        need = min(float(task.resources.get("cpus", 1)), self.workers)
        self._cpus_in_use += need
        future = self._pool.submit(run_task, task, self.store, self.memory, True)
        future.physflow_cpus = need  # type: ignore[attr-defined]
        self._futures.add(future)

    def wait(self) -> list[TaskOutcome]:
        done, self._futures = cf.wait(self._futures, return_when=cf.FIRST_COMPLETED)
        out = []
        for future in done:
            self._cpus_in_use -= future.physflow_cpus  # type: ignore[attr-defined]
            out.append(future.result())
        return out

    def shutdown(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


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

        return DaskExecutor(workers=workers)
    raise ValueError(
        f"unknown executor {executor!r}; use 'serial', 'threads', 'processes', 'dask' or a "
        "physflow.DaskExecutor(...)"
    )
