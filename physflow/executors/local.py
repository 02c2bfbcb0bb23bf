"""In-process executors: serial (the calling thread) and a thread pool; values stay in memory."""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..artifacts.store import Store
from .base import Executor, Job, Slots, TaskOutcome, default_capacity


class SerialExecutor(Executor):
    """Runs a job at once in the calling thread, one at a time: each outcome is handed back
    before the next job starts, so progress is reported node by node and a failure with
    ``fail_fast`` stops the run before anything else starts."""

    name = "serial"
    in_memory = True

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        super().start(store, memory)
        self._done: deque[TaskOutcome] = deque()

    def can_submit(self, task: Job) -> bool:
        return not self._done

    def submit(self, task: Job) -> None:
        self._done.append(task(self.store, self.memory, True))

    def wait(self) -> list[TaskOutcome]:
        done = list(self._done)
        self._done.clear()
        return done

    drain = wait


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

    def can_submit(self, task: Job) -> bool:
        return len(self._futures) < self.workers and self._slots.fits(self._slots.need(task))

    def submit(self, task: Job) -> None:
        need = self._slots.need(task)
        self._slots.take(need)
        future = self._pool.submit(task, self.store, self.memory, True)
        self._futures[future] = need

    def wait(self) -> list[TaskOutcome]:
        done, _ = cf.wait(self._futures, return_when=cf.FIRST_COMPLETED)
        out = []
        for future in done:
            self._slots.give(self._futures.pop(future))
            out.append(future.result())
        return out

    def drain(self) -> list[TaskOutcome]:
        done = [f for f in self._futures if f.done() and not f.cancelled()]
        out = []
        for future in done:
            self._slots.give(self._futures.pop(future))
            if future.exception() is None:
                out.append(future.result())
        return out

    def shutdown(self, cancel: bool = False) -> None:
        # Threads cannot be stopped: on cancel, queued work is dropped and running stages are
        # left to finish in the background (their results still land in the store safely).
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
