"""Local worker processes, one task per process at a time, talking over pipes.

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its workers dies the whole pool
breaks and every running task fails with it, and it cannot tell which task killed the worker.
Here each worker has its own pipe and sentinel, so a worker that dies (segfault, OOM kill,
``os._exit``) fails exactly the node it was running; a fresh worker replaces it.

Only the small pickled job goes to a worker (stages travel by import path, inputs as digests +
small trees); the worker reads its inputs from the store, writes its outputs there and sends back
the small :class:`TaskOutcome`. Workers ignore SIGINT: Ctrl-C reaches the runner, which stops the
workers and writes the manifest.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from ..artifacts.store import Store
from .base import Executor, Job, Slots, TaskOutcome, default_capacity

#: Modules the forkserver imports once, so each worker starts warm (names, not imports: the
#: executor itself never imports the engine).
_PRELOAD = ["physflow.pipeline.task", "physflow.artifacts.store"]


IMPORT_HINT = (
    "stages must be importable by worker processes: define them in a module on the workers' "
    "PYTHONPATH (not in a notebook or an interactive __main__), and guard scripts with "
    "'if __name__ == \"__main__\":'"
)


def _worker_main(conn: Connection, store: Store, environ: dict[str, str]) -> None:
    """Worker loop: receive a task, run it against the store, send back the outcome.

    ``environ`` is the runner's environment when the worker started: a forkserver child would
    otherwise see the environment from whenever the forkserver itself started.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            job = pickle.loads(data)
        except Exception as exc:  # the stage (or config class) cannot be imported here
            conn.send(
                TaskOutcome(
                    uid="",
                    record=None,
                    error=(
                        f"{type(exc).__name__} while loading the task in a worker process: {exc}; "
                        f"{IMPORT_HINT}"
                    ),
                    traceback=traceback.format_exc(),
                )
            )
            continue
        if job is None:
            return
        conn.send(job(store, None, False))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: Job | None = None
    need: dict[str, float] = field(default_factory=dict)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessExecutor(Executor):
    """Run tasks in ``workers`` local processes (default: one per CPU).

    ``resources`` is the capacity the slots are counted against (default: cpus = workers,
    memory_gb = physical memory, gpus = CUDA_VISIBLE_DEVICES). ``start_method`` defaults to
    ``forkserver`` on POSIX (forking a process that runs threads is unsafe) and ``spawn`` elsewhere.
    """

    name = "processes"
    in_memory = False

    def __init__(
        self,
        workers: int | None = None,
        *,
        resources: Mapping[str, float] | None = None,
        start_method: str | None = None,
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.resources = dict(resources or default_capacity(self.workers))
        if start_method is None:
            methods = mp.get_all_start_methods()
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        self.start_method = start_method
        self._pool: list[_Worker] = []

    # -- worker management ------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self.store, dict(os.environ)),
            name="physflow-worker",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        super().start(store, None)
        self._ctx = mp.get_context(self.start_method)
        if self.start_method == "forkserver":
            self._ctx.set_forkserver_preload(_PRELOAD)
        self._slots = Slots(self.resources)
        self._pool = []
        self._deaths: dict[str, list[str]] = {}

    def _idle(self) -> _Worker | None:
        for worker in list(self._pool):
            if worker.task is None:
                if worker.process.is_alive():
                    return worker
                worker.conn.close()  # died while idle (e.g. picked by the OOM killer): replace
                self._pool.remove(worker)
        if len(self._pool) < self.workers:  # start workers on demand: all-hit runs start none
            worker = self._spawn()
            self._pool.append(worker)
            return worker
        return None

    # -- Executor interface ---------------------------------------------------------------------

    def can_submit(self, task: Job) -> bool:
        busy = sum(1 for w in self._pool if w.task is not None)
        return busy < self.workers and self._slots.fits(self._slots.need(task))

    def submit(self, task: Job) -> None:
        worker = self._idle()
        assert worker is not None, "submit() called without can_submit()"
        worker.need = self._slots.need(task)
        self._slots.take(worker.need)
        worker.task = task
        with contextlib.suppress(BrokenPipeError, OSError):
            worker.conn.send(task)  # if the worker died, wait() sees its sentinel

    def wait(self) -> list[TaskOutcome]:
        busy = [w for w in self._pool if w.task is not None]
        if not busy:
            return []
        handles: list[Any] = []
        for worker in busy:
            handles += [worker.conn, worker.process.sentinel]
        ready = set(wait(handles))
        out: list[TaskOutcome] = []
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                outcome = self._collect(worker)
                if outcome is not None:
                    out.append(outcome)
        return out

    def _collect(self, worker: _Worker) -> TaskOutcome | None:
        task = worker.task
        assert task is not None
        outcome: TaskOutcome | None = None
        try:
            if worker.conn.poll():
                outcome = worker.conn.recv()
        except Exception:  # EOF or a half-written message: the worker died while sending
            outcome = None
        if outcome is not None:
            return self._received(worker, outcome)
        self._slots.give(worker.need)
        worker.task, worker.need = None, {}
        # The worker died while running this task: that is this node's failure.
        worker.process.join(timeout=5)
        reason = (
            f"worker process {worker.process.pid} died while running {task.label} "
            f"({_describe_exit(worker.process.exitcode)}); the stage "
            "crashed the interpreter (segfault, out-of-memory kill, os._exit)"
        )
        worker.conn.close()
        self._pool.remove(worker)
        deaths = self._deaths.setdefault(task.uid, [])
        if len(deaths) < task.retries:
            deaths.append(reason)
            self.submit(task)  # a fresh worker; the retry counts against the stage's retries
            return None
        self._deaths.pop(task.uid, None)
        return TaskOutcome(
            uid=task.uid,
            record=None,
            error=f"WorkerDied: {reason}",
            traceback=None,
            attempts=len(deaths) + 1,
            retry_errors=deaths,
        )

    def _received(self, worker: _Worker, outcome: TaskOutcome) -> TaskOutcome:
        """``worker`` sent back its task's outcome: free its slot and label the outcome."""
        task = worker.task
        assert task is not None
        self._slots.give(worker.need)
        worker.task, worker.need = None, {}
        outcome.uid = task.uid
        deaths = self._deaths.pop(task.uid, [])
        if deaths:
            outcome.retry_errors = deaths + outcome.retry_errors
            outcome.attempts += len(deaths)
        return outcome

    def drain(self) -> list[TaskOutcome]:
        """Outcomes already sent back (after Ctrl-C). A worker that died meanwhile is not a
        failure of its node: a terminal's Ctrl-C reaches the whole process group, and a worker
        still starting up (before it ignores SIGINT) dies of it; its node is cancelled."""
        out = []
        for worker in [w for w in self._pool if w.task is not None]:
            try:
                if not worker.conn.poll():
                    continue
                outcome = worker.conn.recv()
            except Exception:  # EOF, OSError or a half-written message: it died
                continue
            out.append(self._received(worker, outcome))
        return out

    def shutdown(self, cancel: bool = False) -> None:
        for worker in self._pool:
            if cancel and worker.task is not None:
                worker.process.kill()  # abandon running work; its temp files are never visible
            else:
                with contextlib.suppress(BrokenPipeError, OSError):
                    worker.conn.send(None)
        for worker in self._pool:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.conn.close()
        self._pool = []
