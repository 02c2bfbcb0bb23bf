"""The runner: plans keys in topological order, serves hits from the store, executes misses.

A run whose plan ran completely before is replayed from that run's plan record (one read; see
:mod:`physflow.artifacts.plans`). Otherwise keys are computed as soon as a node's inputs are
known; a hit costs one small record lookup (the newest plan record of the pipeline first, then
the action cache) and never loads a value. Because inputs enter keys by the digest of their
*value*, a re-executed upstream that reproduces the same bytes leaves its downstream a hit
(early cut-off). Two nodes with the same key in one run (common in scans) execute once.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..artifacts.plans import PLANS_BUDGET_BYTES, PLANS_KEPT_MAX, read_plan, write_plan
from ..artifacts.store import Store, open_store
from ..core.keys import cache_key_with_prefix, combined_outputs_digest
from ..core.records import ActionRecord, OutputEntry, PlanEntry, PlanRecord
from ..executors.base import Executor, TaskOutcome
from ..executors.factory import make_executor
from .events import NodeEvent, ProgressCallback
from .gc_pause import no_gc_pauses
from .plan import PlanNode, plan_digest, plan_pipeline
from .stage import SINGLE_OUTPUT
from .task import Task, TaskInput

if TYPE_CHECKING:
    from ..manifests.schema import RunManifest
    from .graph import Pipeline


class RunFailedError(RuntimeError):
    """Raised by :meth:`RunResult.raise_on_failure` when nodes failed."""


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


def _input_token(state: NodeState, ref_output: str | None, upstream: PlanNode) -> str:
    """The digest by which an input enters the key."""
    outputs = state.outputs or {}
    if ref_output is None:
        if upstream.stage.outputs is None:
            return outputs[SINGLE_OUTPUT].digest
        return combined_outputs_digest({k: e.digest for k, e in outputs.items()})
    return outputs[ref_output].digest


def _task_input(state: NodeState, ref_output: str | None, upstream: PlanNode) -> TaskInput:
    """How a task finds an input's value (built only for misses)."""
    outputs = state.outputs or {}
    if ref_output is None:
        if upstream.stage.outputs is None:
            return TaskInput(entry=outputs[SINGLE_OUTPUT])
        return TaskInput(entries=dict(outputs))
    return TaskInput(entry=outputs[ref_output])


def _record_objects(record: ActionRecord) -> tuple[str, ...]:
    """Objects a record references (empty, cheaply, for records of inline values)."""
    found: tuple[str, ...] = ()
    for entry in record.outputs.values():
        if entry.objects:
            found += entry.objects
    return found


def _replay(
    plan: list[PlanNode], record: PlanRecord | None, store: Store
) -> dict[str, NodeState] | None:
    """States of a run served whole from a plan record, or None if it does not apply."""
    if record is None or len(record.nodes) != len(plan):
        return None
    states: dict[str, NodeState] = {}
    has_objects = store.has_objects
    for node, entry in zip(plan, record.nodes, strict=True):
        action = entry.record
        if node.uid != entry.uid or action.key != entry.key:
            return None
        objects = _record_objects(action)
        if objects and not has_objects(objects):
            return None  # gc or quarantine removed a value: the per-node path recomputes it
        states[entry.uid] = NodeState(
            "hit",
            entry.key,
            entry.input_digests,
            action.outputs,
            action,
            manifest_node=entry.manifest_node,
        )
    return states


def _hints(store: Store, latest: str | None) -> dict[str, PlanEntry]:
    """Records of the newest plan record of pipeline ``latest``, by key (see plans.py)."""
    if latest is None:
        return {}
    previous = store.get_latest_plan(latest)
    record = read_plan(store, previous) if previous is not None else None
    if record is None:
        return {}
    return {entry.key: entry for entry in record.nodes if entry.record.key == entry.key}


def remember_plan(
    store: Store,
    outcome: RunOutcome,
    manifest_nodes: list[bytes] | None = None,
    latest: str | None = None,
) -> None:
    """Write the plan record that lets the next run of this plan replay this one.

    ``manifest_nodes``: each node's manifest record as an all-hit run shows it; ``latest``: the
    pipeline name under which this becomes the newest plan record (hints for changed plans).
    """
    if outcome.plan_digest is None or not outcome.complete:
        return
    entries = []
    nodes = outcome.nodes
    for i, (uid, state) in enumerate(outcome.states.items()):
        if state.key is None or state.record is None:
            return
        manifest_node = manifest_nodes[i] if manifest_nodes is not None else None
        entries.append(
            PlanEntry(
                uid, state.key, state.input_digests, state.record, nodes[uid].token, manifest_node
            )
        )
    # Only an accelerator: a full disk or a read-only store must not fail a finished run.
    with contextlib.suppress(OSError, sqlite3.Error):
        write_plan(store, PlanRecord(outcome.plan_digest, entries))
        if latest is not None:
            store.push_latest_plan(latest, outcome.plan_digest, PLANS_BUDGET_BYTES, PLANS_KEPT_MAX)


def note_replayed(store: Store, outcome: RunOutcome, latest: str) -> None:
    """After a replay: make its plan the newest of ``latest`` unless it already is (no write
    when the same pipeline is re-run again and again)."""
    if outcome.plan_digest is None or store.get_latest_plan(latest) == outcome.plan_digest:
        return
    with contextlib.suppress(OSError, sqlite3.Error):
        store.push_latest_plan(latest, outcome.plan_digest, PLANS_BUDGET_BYTES, PLANS_KEPT_MAX)


def execute_plan(
    plan: Iterable[PlanNode],
    store: Store,
    executor: Executor,
    *,
    fail_fast: bool = False,
    progress: ProgressCallback | None = None,
    keep_in_memory: bool = False,
    order_seed: int | None = None,
    touch_hits: bool = False,
    latest: str | None = None,
) -> RunOutcome:
    """Run a plan to completion. Never raises for stage failures; KeyboardInterrupt is caught,
    running work is cancelled and the outcome is marked interrupted.

    ``order_seed`` shuffles the order in which ready nodes are planned and submitted (a test hook:
    results must not depend on scheduling order). A task failing on a corrupt input object gets
    the object quarantined and its producer recomputed, then runs again. ``touch_hits`` bumps
    each hit record's time for gc's LRU order; runs that write a manifest need not (gc reads
    last use from manifests), which keeps a syscall off the hot path.

    A plan whose last complete run left a plan record (:func:`remember_plan`) is served from
    that one record when every object it references is still stored.
    Otherwise the newest plan record of pipeline ``latest`` (if given) serves as a first place
    to look for each key's record.
    """
    plan = list(plan)
    nodes = {n.uid: n for n in plan}
    total = len(nodes)
    digest = plan_digest(plan)
    started = time.time()
    with no_gc_pauses():  # decoding a plan record makes many objects and no cycles
        replayed_states = _replay(plan, read_plan(store, digest), store)
    if replayed_states is not None:
        for uid, state in replayed_states.items():
            if touch_hits:
                store.touch_action(state.key)  # type: ignore[arg-type]
            if progress is not None:
                node = nodes[uid]
                progress(NodeEvent("hit", uid, node.node_id, node.stage.name, total))
        return RunOutcome(
            nodes,
            replayed_states,
            started,
            time.time(),
            False,
            executor.name,
            {},
            digest,
            True,
        )
    with no_gc_pauses():
        hints = _hints(store, latest)
    states = {uid: NodeState() for uid in nodes}
    downstream: dict[str, list[str]] = defaultdict(list)
    waiting_on: dict[str, int] = {}
    upstream: dict[str, tuple[str, ...]] = {}
    for uid, node in nodes.items():
        ups = upstream[uid] = tuple(dict.fromkeys(ref.uid for ref in node.inputs.values()))
        waiting_on[uid] = len(ups)
        for up in ups:
            downstream[up].append(uid)
    ready = deque(uid for uid, n in waiting_on.items() if n == 0)
    inflight_keys: dict[str, list[str]] = {}  # key -> uids waiting for the same work
    running: dict[str, str] = {}  # uid -> key
    memory: dict[str, Any] = {}
    consumers_left = {uid: len(downstream.get(uid, ())) for uid in nodes}
    memory_refs: dict[str, int] = defaultdict(int)
    interrupted = False
    stop = False
    shuffler = random.Random(order_seed) if order_seed is not None else None
    redo_targets: dict[str, list[str]] = {}  # producer uid -> consumers waiting for its redo
    redo_waiters: dict[str, list[str]] = {}  # consumer uid -> same-key uids that waited on it
    redo_count: dict[str, int] = defaultdict(int)
    starts_on_submit = executor.starts_on_submit
    started_uids: set[str] = set()
    executor.want_starts = progress is not None and not starts_on_submit
    executor.start(store, memory if executor.in_memory else None)

    if progress is None:

        def event(kind: str, uid: str, **extra: Any) -> None:
            pass
    else:

        def event(kind: str, uid: str, **extra: Any) -> None:
            node = nodes[uid]
            progress(NodeEvent(kind, uid, node.node_id, node.stage.name, total, **extra))  # type: ignore[arg-type]

    def release_inputs(uid: str) -> None:
        if keep_in_memory:
            return
        for up in upstream[uid]:
            consumers_left[up] -= 1
            if consumers_left[up] == 0 and memory:
                for entry in (states[up].outputs or {}).values():
                    memory_refs[entry.digest] -= 1
                    if memory_refs[entry.digest] <= 0:
                        memory.pop(entry.digest, None)

    def finish(uid: str, status: str) -> None:
        states[uid].status = status
        targets = redo_targets.pop(uid, None)
        if targets is not None:  # a recomputed producer: wake only the consumers that asked
            for down in targets:
                waiting_on[down] -= 1
                if waiting_on[down] == 0:
                    ready.append(down)
            return
        release_inputs(uid)
        for down in downstream.get(uid, ()):
            waiting_on[down] -= 1
            if waiting_on[down] == 0:
                ready.append(down)

    def accept(uid: str, record: ActionRecord, outcome: TaskOutcome | None, status: str) -> None:
        state = states[uid]
        state.record, state.outputs, state.outcome = record, record.outputs, outcome
        if (
            outcome is not None
            and outcome.values is not None
            and executor.in_memory
            and (consumers_left[uid] or keep_in_memory)
        ):
            for name, entry in record.outputs.items():
                memory[entry.digest] = outcome.values[name]
                memory_refs[entry.digest] += 1
        finish(uid, status)

    def schedule(uid: str) -> None:
        node = nodes[uid]
        state = states[uid]
        for name, ref in node.inputs.items():
            up_state = states[ref.uid]
            if up_state.status in ("failed", "skipped", "cancelled"):
                state.error = f"skipped: upstream node '{nodes[ref.uid].node_id}' {up_state.status}"
                event("skipped", uid, error=state.error)
                finish(uid, "cancelled" if stop else "skipped")
                return
            state.input_digests[name] = _input_token(up_state, ref.output, nodes[ref.uid])
        key = cache_key_with_prefix(node.key_prefix, state.input_digests, node.seed_token)
        state.key = key
        hint = hints.get(key) if hints else None
        if hint is not None and store.has_objects(_record_objects(hint.record)):
            record: ActionRecord | None = hint.record
            if hint.token == node.token:  # same node, same key: same manifest record
                state.manifest_node = hint.manifest_node
        else:
            record = store.get_action(key)
            if record is not None and not store.has_objects(_record_objects(record)):
                record = None
        if record is not None:
            if touch_hits:
                store.touch_action(key)
            event("hit", uid)
            accept(uid, record, None, "hit")
            return
        if key in inflight_keys:
            inflight_keys[key].append(uid)
            return
        if stop:
            state.error = "cancelled: fail_fast stopped the run"
            event("skipped", uid, error=state.error)
            finish(uid, "cancelled")
            return
        inflight_keys[key] = redo_waiters.pop(uid, [])
        inputs = {
            name: _task_input(states[ref.uid], ref.output, nodes[ref.uid])
            for name, ref in node.inputs.items()
        }
        pending_tasks.append(
            Task(
                uid,
                node.node_id,
                node.stage,
                node.config,
                key,
                inputs,
                node.seed if node.stage.uses_rng else None,
                node.stage.resources,
            )
        )
        event("queued", uid)

    pending_tasks: deque[Task] = deque()

    def handle(outcome: TaskOutcome) -> None:
        nonlocal stop
        uid = outcome.uid
        key = running.pop(uid)
        started_uids.discard(uid)
        same = inflight_keys.pop(key, [])
        for error in outcome.retry_errors:
            event("retry", uid, error=error)
        if outcome.record is None and outcome.corrupt and recompute_producers(uid, outcome):
            event("retry", uid, error=outcome.error)
            redo_waiters[uid] = same
            return
        if outcome.record is not None:
            event("done", uid, duration_s=outcome.duration_s)
            accept(uid, outcome.record, outcome, "miss")
            for other in same:
                event("hit", other)
                accept(other, outcome.record, outcome, "hit")
        else:
            states[uid].outcome = outcome
            states[uid].error = outcome.error
            event("failed", uid, error=outcome.error)
            finish(uid, "failed")
            for other in same:
                states[other].outcome = outcome
                states[other].error = outcome.error
                event("failed", other, error=outcome.error)
                finish(other, "failed")
            if fail_fast:
                stop = True

    def recompute_producers(uid: str, outcome: TaskOutcome) -> bool:
        """Quarantine a corrupt input object and re-run the node(s) that produced it."""
        bad = outcome.corrupt
        quarantine = getattr(store, "quarantine", None)
        if quarantine is None or redo_count[uid] >= 2:
            return False
        producers = [
            up
            for up in upstream[uid]
            if any(bad == e.digest or bad in e.objects for e in (states[up].outputs or {}).values())
        ]
        if not producers:
            return False
        with contextlib.suppress(FileNotFoundError):  # already moved by a concurrent consumer
            quarantine(bad)
        redo_count[uid] += 1
        states[uid].error = None
        waiting_on[uid] = len(producers)
        for up in producers:
            up_state = states[up]
            up_state.status, up_state.outputs, up_state.record = "pending", None, None
            up_state.manifest_node = None
            redo_targets.setdefault(up, []).append(uid)
            if len(redo_targets[up]) == 1:
                ready.append(up)
        return True

    def _loop() -> None:
        nonlocal ready, pending_tasks
        while True:
            if shuffler is not None and len(ready) > 1:
                order = list(ready)
                shuffler.shuffle(order)
                ready = deque(order)
            while ready:
                schedule(ready.popleft())
            if shuffler is not None and len(pending_tasks) > 1:
                order = list(pending_tasks)
                shuffler.shuffle(order)
                pending_tasks = deque(order)
            while pending_tasks and not stop and executor.can_submit(pending_tasks[0]):
                task = pending_tasks.popleft()
                running[task.uid] = task.key
                if starts_on_submit:
                    event("started", task.uid)
                executor.submit(task)
            if stop:
                for task in pending_tasks:
                    for uid in (task.uid, *inflight_keys.pop(task.key, ())):
                        states[uid].error = "cancelled: fail_fast stopped the run"
                        event("skipped", uid, error=states[uid].error)
                        finish(uid, "cancelled")
                pending_tasks.clear()
            if not running:
                if ready or (pending_tasks and not stop):
                    continue
                break
            outcomes = executor.wait()
            if executor.want_starts:
                for outcome in outcomes:  # a start report may lose the race with the result
                    if outcome.uid not in started_uids:
                        event("started", outcome.uid)
            for outcome in outcomes:
                handle(outcome)
            if executor.want_starts:  # after the results: they freed the slots these took
                for uid in executor.started():
                    if uid in running and uid not in started_uids:
                        started_uids.add(uid)
                        event("started", uid)

    # Stages running in this process record their results in batches (one commit per ~20 ms).
    deferred = store.deferred_action_writes() if executor.in_memory else contextlib.nullcontext()
    try:
        with deferred:
            _loop()
    except KeyboardInterrupt:
        interrupted = True
        executor.shutdown(cancel=True)
    except BaseException:
        executor.shutdown(cancel=True)
        raise
    else:
        executor.shutdown()
    for state in states.values():  # interrupted (or never reached): nothing was recorded
        if state.status == "pending":
            state.status = "cancelled"
    return RunOutcome(
        nodes, states, started, time.time(), interrupted, executor.name, memory, digest
    )


class RunResult:
    """What :meth:`Pipeline.run` returns: statuses, lazy access to values, the manifest."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: Store,
        outcome: RunOutcome,
        manifest: RunManifest | bytes,  # bytes: decoded on first use
        manifest_path: str | None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.outcome = outcome
        self._manifest = manifest
        self.manifest_path = manifest_path
        self._values: dict[str, Any] = {}

    @property
    def manifest(self) -> RunManifest:
        """The run manifest (decoded from the JSON written for it, on first use)."""
        if isinstance(self._manifest, bytes):
            from ..manifests.writer import decode_manifest

            self._manifest = decode_manifest(self._manifest)
        return self._manifest

    def _ids(self, *statuses: str) -> list[str]:
        return [uid for uid, s in self.outcome.states.items() if s.status in statuses]

    @property
    def hits(self) -> list[str]:
        return self._ids("hit")

    @property
    def misses(self) -> list[str]:
        return self._ids("miss")

    @property
    def failed(self) -> list[str]:
        return self._ids("failed")

    @property
    def skipped(self) -> list[str]:
        return self._ids("skipped", "cancelled")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.outcome.interrupted

    @property
    def errors(self) -> dict[str, str]:
        return {
            uid: s.error or "" for uid, s in self.outcome.states.items() if s.status == "failed"
        }

    @property
    def tracebacks(self) -> dict[str, str]:
        return {
            uid: (s.outcome.traceback or "") if s.outcome else ""
            for uid, s in self.outcome.states.items()
            if s.status == "failed"
        }

    def raise_on_failure(self) -> RunResult:
        if self.failed:
            details = "\n".join(f"  {uid}: {err}" for uid, err in self.errors.items())
            raise RunFailedError(f"{len(self.failed)} node(s) failed:\n{details}")
        return self

    def entries(self, node_id: str) -> dict[str, OutputEntry]:
        state = self.outcome.states.get(node_id)
        if state is None:
            raise KeyError(f"no node '{node_id}' in this run")
        if state.outputs is None:
            raise KeyError(
                f"node '{node_id}' has no outputs (status: {state.status}: {state.error})"
            )
        return state.outputs

    def digest(self, ref: str) -> str:
        node_id, _, output = ref.partition(".")
        entries = self.entries(node_id)
        if output:
            return entries[output].digest
        if list(entries) == [SINGLE_OUTPUT]:
            return entries[SINGLE_OUTPUT].digest
        return combined_outputs_digest({k: e.digest for k, e in entries.items()})

    def __getitem__(self, ref: str) -> Any:
        if ref in self._values:
            return self._values[ref]
        node_id, _, output = ref.partition(".")
        entries = self.entries(node_id)
        if output:
            if output not in entries:
                raise KeyError(
                    f"node '{node_id}' has no output '{output}' (has: {', '.join(entries)})"
                )
            value = self._load(entries[output])
        elif list(entries) == [SINGLE_OUTPUT]:
            value = self._load(entries[SINGLE_OUTPUT])
        else:
            value = {k: self._load(e) for k, e in entries.items()}
        self._values[ref] = value
        return value

    def _load(self, entry: OutputEntry) -> Any:
        if entry.digest in self.outcome.memory:
            return self.outcome.memory[entry.digest]
        return self.store.get_value(entry)

    def __repr__(self) -> str:
        return (
            f"<RunResult {self.pipeline.name}: {len(self.hits)} hits, {len(self.misses)} misses, "
            f"{len(self.failed)} failed, {len(self.skipped)} skipped>"
        )


def run_pipeline(
    pipeline: Pipeline,
    store: Store | str | None = None,
    executor: Any = "serial",
    *,
    workers: int | None = None,
    fail_fast: bool = False,
    progress: ProgressCallback | None = None,
    write_manifest: bool = True,
    overrides: Mapping[str, Any] | None = None,
    order_seed: int | None = None,
) -> RunResult:
    """Run ``pipeline`` on ``store`` with ``executor``; see :class:`RunResult`.

    ``executor`` is "serial", "threads", "processes", "dask" or an executor object such as
    ``physflow.DaskExecutor(...)``; ``workers`` sizes the local pools. Failed nodes do not stop
    independent branches unless ``fail_fast``. ``order_seed`` shuffles scheduling order (tests).
    """

    store = open_store(store)
    with no_gc_pauses():
        plan = plan_pipeline(pipeline)
    runner = make_executor(executor, workers)
    outcome = execute_plan(
        plan,
        store,
        runner,
        fail_fast=fail_fast,
        progress=progress,
        keep_in_memory=False,
        order_seed=order_seed,
        touch_hits=not write_manifest,
        latest=pipeline.name,
    )
    with no_gc_pauses():
        return _finish_run(pipeline, store, outcome, overrides, write_manifest)


def _finish_run(
    pipeline: Pipeline,
    store: Store,
    outcome: RunOutcome,
    overrides: Mapping[str, Any] | None,
    write_manifest: bool,
) -> RunResult:
    """Write the manifest (and the plan record) of a finished run."""
    from ..manifests import writer

    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    header = writer.run_manifest_header(pipeline, store, outcome, run_id, overrides or {})
    # Node records a plan record already had are reused as encoded; the rest are built now.
    nodes_json, replay_nodes = writer.encode_run_nodes(outcome)
    manifest = writer.encode_manifest(header, nodes_json)
    path = str(writer.write_manifest(store, run_id, manifest)) if write_manifest else None
    if outcome.replayed:
        note_replayed(store, outcome, pipeline.name)
    elif outcome.complete:
        remember_plan(store, outcome, replay_nodes, latest=pipeline.name)
    result = RunResult(pipeline, store, outcome, manifest, path)
    if outcome.interrupted:
        raise KeyboardInterrupt(f"run interrupted; manifest written to {path}")
    return result
