"""Running misses on a dask.distributed cluster (a local one, or an existing scheduler).

Each miss becomes one dask task that receives the small pickled job (inputs as digests + small
trees) and how to open the store (its location and options: ``storage_options``, ``cache_dir``),
runs it on the worker — which reads inputs from and writes outputs to the store — and returns
only the small :class:`TaskOutcome`. Large values never travel through the scheduler, so workers
must reach the same store: a shared filesystem, or an object store URL (``s3://...``) that every
worker opens itself, each behind its own local tier when ``cache_dir`` is set.

A worker lost while running a task (its machine died, the batch system preempted it) costs only
that attempt: the scheduler runs the task again on another worker, up to ``lost_worker_retries``
times. Whatever the lost attempt had written stays invisible (objects and records are published
whole, records last), so the retry starts clean.

Stage ``resources`` become dask worker resources. A cluster started here declares
``{"cpus": threads_per_worker, "memory_gb": memory per worker}`` on every worker; requests for a
resource no worker declares are dropped (dask would otherwise wait forever) and requests larger
than any worker offers are clamped to the largest offer.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..artifacts.store import Store
from .base import Executor, Job, TaskOutcome, total_memory_gb

_STORES: dict[str, Store] = {}


def _run_on_worker(task: Job, spec: tuple, topic: str) -> TaskOutcome:
    """Executed on a dask worker: open (once per process) the store and run the task.

    ``spec`` is the store's pickled form (location, options): a worker opens the same store by
    URL with the same ``storage_options`` and ``cache_dir`` (a path on the worker's own host).
    """
    if topic:  # tell the client this task really started (progress reporting)
        from distributed import get_worker

        get_worker().log_event(topic, task.uid)
    name = repr(spec)
    store = _STORES.get(name)
    if store is None:
        opener, args = spec
        store = _STORES[name] = opener(*args)
    return task(store, None, False)


def start_local_cluster(factory: Any, **kwargs: Any) -> Any:
    """Start a LocalCluster without dask's malloc trim setting and without leaking env changes.

    dask's nannies write ``distributed.nanny.pre-spawn-environ`` into *this* process's
    ``os.environ`` before spawning workers, so every process started later (physflow's process
    workers, multiprocessing pools) inherits ``MALLOC_TRIM_THRESHOLD_=65536``. With it, numpy
    code that allocates and frees arrays above 64 KiB pays page faults on every allocation;
    measured here, a 2-process pool of such stages fell from 2.0x to 1.3x over serial. physflow
    workers stream large values through the store, so the trim is not needed: it is dropped,
    and the caller's environment is restored once the cluster is up.
    """
    import dask

    saved = dict(os.environ)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            return factory(**kwargs)
    finally:
        for name in [k for k in os.environ if k not in saved]:
            del os.environ[name]
        os.environ.update(saved)


class DaskExecutor(Executor):
    """Run misses on dask.distributed.

    ``address=None`` starts a ``LocalCluster`` of ``workers`` processes (default: one per CPU)
    with ``threads_per_worker`` threads each; an address (``"tcp://host:8786"``) or a
    ``distributed.Client`` (``client=``, e.g. of a dask-jobqueue ``SLURMCluster``) joins an
    existing cluster (physflow never closes a client it was given). The cluster is kept across
    runs: close it with :meth:`close` or use the executor as a context manager. A worker that
    dies while running a task: the task runs again on another worker, up to
    ``lost_worker_retries`` times (the local cluster's ``allowed-failures``; an external
    scheduler applies its own setting, 3 by default), then fails its node -- so a stage that
    crashes its worker fails after that many retries, while a lost machine costs one attempt.
    """

    name = "dask"
    in_memory = False
    starts_on_submit = False  # tasks may queue on the scheduler; workers report real starts

    def __init__(
        self,
        address: Any = None,
        workers: int | None = None,
        *,
        threads_per_worker: int = 1,
        resources: Mapping[str, float] | None = None,
        close_after_run: bool = False,
        lost_worker_retries: int = 1,
        client: Any = None,
        **cluster_options: Any,
    ) -> None:
        self.address = client if client is not None else address
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.worker_resources = dict(resources) if resources is not None else None
        self.close_after_run = close_after_run
        self.lost_worker_retries = lost_worker_retries
        self.cluster_options = cluster_options
        self.client: Any = None
        self.cluster: Any = None
        self._owns_client = False
        self._topic = f"physflow-started-{uuid.uuid4().hex[:12]}"
        self._started: deque[str] = deque()
        self._subscribed = False

    # -- cluster lifecycle ------------------------------------------------------------------------

    def connect(self) -> Any:
        """Start or join the cluster now (otherwise the first run does it); returns the Client."""
        if self.client is not None:
            return self.client
        from distributed import Client, LocalCluster

        if self.address is None:
            n = self.workers or os.cpu_count() or 1
            resources = self.worker_resources
            if resources is None:
                resources = {"cpus": float(self.threads_per_worker)}
                memory = total_memory_gb()
                if memory:
                    resources["memory_gb"] = round(memory / n, 3)
            options = {"dashboard_address": ":0", "silence_logs": 40, **self.cluster_options}
            self.cluster = start_local_cluster(
                LocalCluster,
                n_workers=n,
                threads_per_worker=self.threads_per_worker,
                processes=True,
                resources=resources,
                scheduler_kwargs={"allowed_failures": self.lost_worker_retries},
                **options,
            )
            self.client = Client(self.cluster)
        elif isinstance(self.address, str):
            self.client = Client(self.address)
        else:
            self.client = self.address  # an existing Client
            return self.client
        self._owns_client = True
        return self.client

    def close(self) -> None:
        """Close the client and the local cluster started by this executor."""
        if self._owns_client and self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
        self._owns_client = self._subscribed = False

    def __enter__(self) -> DaskExecutor:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Executor interface ---------------------------------------------------------------------

    def start(self, store: Store, memory: dict[str, Any] | None) -> None:
        super().start(store, None)
        self._futures: dict[Any, Job] = {}
        self._batch: list[Job] = []
        self._started.clear()
        self._rejected: list[TaskOutcome] = []
        self._offers: dict[str, float] | None = None  # connect on the first miss, not for hits

    @staticmethod
    def _worker_offers(client: Any) -> dict[str, float]:
        offers: dict[str, float] = {}
        for info in client.scheduler_info().get("workers", {}).values():
            for name, amount in (info.get("resources") or {}).items():
                offers[name] = max(offers.get(name, 0.0), float(amount))
        return offers

    def _dask_resources(self, task: Job) -> dict[str, float] | None:
        wanted = dict(task.resources)
        if "cpus" not in wanted and "cpus" in self._offers:
            wanted["cpus"] = 1.0
        offers = self._offers or {}
        out = {k: min(float(v), offers[k]) for k, v in wanted.items() if k in offers and v > 0}
        return out or None

    def submit(self, task: Job) -> None:
        self._batch.append(task)  # sent together at the next wait(): one message, not one each

    def _flush(self) -> None:
        if not self._batch:
            return
        if self._offers is None:
            self._offers = self._worker_offers(self.connect())
        if self.want_starts and not self._subscribed:
            self.client.subscribe_topic(self._topic, self._on_started)
            self._subscribed = True
        topic = self._topic if self.want_starts else ""
        groups: dict[tuple[tuple[str, float], ...], list[Job]] = {}
        for task in self._batch:
            problem = self._import_problem(task)
            if problem is not None:  # one unloadable task would fail its whole batch
                self._rejected.append(TaskOutcome(uid=task.uid, record=None, error=problem))
                continue
            wanted = self._dask_resources(task) or {}
            groups.setdefault(tuple(sorted(wanted.items())), []).append(task)
        self._batch = []
        spec = self.store.__reduce__()
        for resources, tasks in groups.items():
            n = len(tasks)
            futures = self.client.map(
                _run_on_worker,
                tasks,
                [spec] * n,
                [topic] * n,
                key=[f"physflow-{t.uid.replace('/', '-')}-{uuid.uuid4().hex[:12]}" for t in tasks],
                pure=False,
                resources=dict(resources) or None,
                retries=0,
            )
            self._futures.update(zip(futures, tasks))

    def _import_problem(self, task: Job) -> str | None:
        """Why workers could not load this job (once per distinct problem source)."""
        return task.preflight()

    def _on_started(self, event: tuple[float, str]) -> None:
        self._started.append(event[1])  # called in the client's event-loop thread

    def started(self) -> list[str]:
        out = []
        while self._started:
            out.append(self._started.popleft())
        return out

    def wait(self) -> list[TaskOutcome]:
        from distributed import wait

        self._flush()
        if self._rejected:
            out, self._rejected = self._rejected, []
            return out
        if not self._futures:
            return []
        futures = list(self._futures)
        while True:
            try:  # with progress wanted, wake up now and then to report starts
                timeout = 0.2 if self.want_starts else None
                done, _ = wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
                break
            except TimeoutError:
                if self._started:
                    return []
        out = []
        for future in done:
            task = self._futures.pop(future)
            out.append(self._outcome(future, task))
        return out

    @staticmethod
    def _outcome(future: Any, task: Job) -> TaskOutcome:
        if future.status == "finished":
            return future.result()
        try:
            exc = future.exception()
        except BaseException as err:  # cancelled futures raise instead of returning
            exc = err
        name = type(exc).__name__
        if name == "KilledWorker":
            error = (
                f"WorkerDied: the dask workers running {task.label} died (segfault, "
                f"out-of-memory kill, os._exit, lost machine), more often than the scheduler "
                f"retries: {exc}"
            )
        else:
            error = (
                f"{name}: {exc} (raised by dask while running {task.label}; "
                "stages must be importable on the workers: define them in a module on "
                "the workers' PYTHONPATH)"
            )
        tb = None
        if getattr(exc, "__traceback__", None) is not None:
            import traceback

            tb = "".join(traceback.format_exception(exc))
        return TaskOutcome(uid=task.uid, record=None, error=error, traceback=tb)

    def drain(self) -> list[TaskOutcome]:
        done = [f for f in getattr(self, "_futures", {}) if f.status == "finished"]
        return [self._outcome(f, self._futures.pop(f)) for f in done]

    def shutdown(self, cancel: bool = False) -> None:
        if cancel and self._futures and self.client is not None:
            self.client.cancel(list(self._futures))
        self._futures, self._batch = {}, []
        if self.close_after_run:
            self.close()
