"""The scheduler: runs a plan to completion -- replay, hits, misses -- on any executor.

A plan whose last complete run left a plan record is served from that one record when every
object it references is still stored (:meth:`ActionCache.replayable`). Otherwise keys are
computed as soon as a node's inputs are known; a hit costs one small record lookup (the newest
plan record of the pipeline first, then the action cache) and never loads a value. Because
inputs enter keys by the digest of their *value*, a re-executed upstream that reproduces the
same bytes leaves its downstream a hit (early cut-off). Two nodes with the same key in one run
(common in scans) execute once. A task failing on a corrupt input gets the object quarantined
and its producer recomputed, then runs again.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

from ..artifacts.action_cache import record_objects
from ..artifacts.store import Store
from ..core.keys import cache_key_with_prefix
from ..core.records import ActionRecord, PlanRecord
from ..executors.base import Executor, TaskOutcome
from .events import NodeEvent, ProgressCallback
from .gc_pause import no_gc_pauses
from .memory_ledger import MemoryLedger
from .outcome import NodeState, RunOutcome, input_token, replayed_states, task_input
from .plan import PlanNode, plan_digest
from .task import Task

_STOPPED = "cancelled: fail_fast stopped the run"


class Scheduler:
    """One run of one plan (see the module docstring); :meth:`run` returns its outcome.

    ``order_seed`` shuffles the order in which ready nodes are planned and submitted (a test
    hook: results must not depend on scheduling order). ``touch_hits`` bumps each hit record's
    time for gc's LRU order (runs that write a manifest need not). ``latest`` names the
    pipeline whose newest plan record serves as a first place to look for each key.
    """

    def __init__(
        self,
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
    ) -> None:
        self.plan = list(plan)
        self.nodes = {n.uid: n for n in self.plan}
        self.store, self.actions, self.executor = store, store.actions, executor
        self.fail_fast, self.progress, self.keep_in_memory = fail_fast, progress, keep_in_memory
        self.touch_hits, self.latest = touch_hits, latest
        self.shuffler = random.Random(order_seed) if order_seed is not None else None
        self.digest = plan_digest(self.plan)
        self.started = time.time()

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> RunOutcome:
        with no_gc_pauses():  # decoding a plan record makes many objects and no cycles
            record = self.actions.replayable(self.digest, [n.uid for n in self.plan])
        if record is not None:
            return self._replay(record)
        with no_gc_pauses():
            self.hints = self.actions.hints(self.latest)
        self._prepare()
        interrupted = False
        # Stages running in this process record their results in batches (see records_sqlite).
        batch = self.actions.batch() if self.executor.in_memory else contextlib.nullcontext()
        try:
            with batch:
                self._loop()
        except KeyboardInterrupt:
            interrupted = True
            self._record_finished()
            self.executor.shutdown(cancel=True)
        except BaseException:
            self.executor.shutdown(cancel=True)
            raise
        else:
            self.executor.shutdown()
        for state in self.states.values():  # interrupted (or never reached): nothing recorded
            if state.status == "pending":
                state.status = "cancelled"
        return self._outcome(self.states, interrupted, self.memory)

    def _record_finished(self) -> None:
        """After Ctrl-C: work that finished is recorded as finished (its record is already
        stored), not reported as cancelled; nothing new is started."""
        self.stop = True
        with contextlib.suppress(Exception):  # best effort: the run is being torn down
            for outcome in self.executor.drain():
                if outcome.uid in self.running:
                    self._handle(outcome)

    def _outcome(self, states: dict[str, NodeState], interrupted: bool, memory: dict) -> RunOutcome:
        return RunOutcome(
            self.nodes,
            states,
            self.started,
            time.time(),
            interrupted,
            self.executor.name,
            memory,
            self.digest,
            replayed=False,
        )

    def _replay(self, record: PlanRecord) -> RunOutcome:
        states = replayed_states(record)
        total = len(self.nodes)
        for uid, state in states.items():
            if self.touch_hits:
                self.actions.touch(state.key)  # type: ignore[arg-type]
            if self.progress is not None:
                node = self.nodes[uid]
                self.progress(NodeEvent("hit", uid, node.node_id, node.stage.name, total))
        outcome = self._outcome(states, False, {})
        outcome.replayed = True
        return outcome

    def _prepare(self) -> None:
        nodes = self.nodes
        self.states = {uid: NodeState() for uid in nodes}
        self.downstream: dict[str, list[str]] = defaultdict(list)
        self.waiting_on: dict[str, int] = {}
        self.upstream: dict[str, tuple[str, ...]] = {}
        for uid, node in nodes.items():
            ups = self.upstream[uid] = tuple({r.uid: None for r in node.inputs.values()})
            self.waiting_on[uid] = len(ups)
            for up in ups:
                self.downstream[up].append(uid)
        self.ready = deque(uid for uid, n in self.waiting_on.items() if n == 0)
        self.pending: deque[Task] = deque()
        self.inflight: dict[str, list[str]] = {}  # key -> uids waiting for the same work
        self.running: dict[str, str] = {}  # uid -> key
        consumers = {uid: len(self.downstream.get(uid, ())) for uid in nodes}
        self.ledger = MemoryLedger(consumers, keep_all=self.keep_in_memory)
        self.memory = self.ledger.values
        self.stop = False
        self.redo_targets: dict[str, list[str]] = {}  # producer -> consumers awaiting its redo
        self.redo_waiters: dict[str, list[str]] = {}  # consumer -> same-key uids that waited
        self.redo_count: dict[str, int] = defaultdict(int)
        self.started_uids: set[str] = set()
        executor = self.executor
        executor.want_starts = self.progress is not None and not executor.starts_on_submit
        executor.start(self.store, self.memory if executor.in_memory else None)

    def _event(self, kind: str, uid: str, **extra: Any) -> None:
        if self.progress is not None:
            node = self.nodes[uid]
            event = NodeEvent(kind, uid, node.node_id, node.stage.name, len(self.nodes), **extra)  # type: ignore[arg-type]
            self.progress(event)

    # -- the loop ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        executor = self.executor
        while True:
            self._plan_ready()
            self._submit_pending()
            if not self.running:
                if self.ready or (self.pending and not self.stop):
                    continue
                break
            outcomes = executor.wait()
            if executor.want_starts:
                for outcome in outcomes:  # a start report may lose the race with the result
                    if outcome.uid not in self.started_uids:
                        self._event("started", outcome.uid)
            for outcome in outcomes:
                self._handle(outcome)
            if executor.want_starts:  # after the results: they freed the slots these took
                for uid in executor.started():
                    if uid in self.running and uid not in self.started_uids:
                        self.started_uids.add(uid)
                        self._event("started", uid)

    def _plan_ready(self) -> None:
        if self.shuffler is not None and len(self.ready) > 1:
            order = list(self.ready)
            self.shuffler.shuffle(order)
            self.ready = deque(order)
        ready, schedule = self.ready, self._schedule
        while ready:
            schedule(ready.popleft())

    def _submit_pending(self) -> None:
        if self.shuffler is not None and len(self.pending) > 1:
            order = list(self.pending)
            self.shuffler.shuffle(order)
            self.pending = deque(order)
        pending, executor = self.pending, self.executor
        while pending and not self.stop and executor.can_submit(pending[0]):
            task = pending.popleft()
            self.running[task.uid] = task.key
            if executor.starts_on_submit:
                self._event("started", task.uid)
            executor.submit(task)
        if self.stop:
            for task in pending:
                for uid in (task.uid, *self.inflight.pop(task.key, ())):
                    self._cancel(uid, _STOPPED)
            pending.clear()

    # -- one node ---------------------------------------------------------------------------------

    def _schedule(self, uid: str) -> None:
        """Plan one ready node: its key, then a hit, a wait for identical work, or a task."""
        node, state, states = self.nodes[uid], self.states[uid], self.states
        if self._await_redone_inputs(uid):
            return
        for name, ref in node.inputs.items():
            up_state = states[ref.uid]
            if up_state.status in ("failed", "skipped", "cancelled"):
                error = f"skipped: upstream node '{self.nodes[ref.uid].node_id}' {up_state.status}"
                self._cancel(uid, error, "cancelled" if self.stop else "skipped")
                return
            state.input_digests[name] = input_token(up_state, ref.output)
        key = state.key = cache_key_with_prefix(
            node.key_prefix, state.input_digests, node.seed_token
        )
        record = self._lookup(node, state, key)
        if record is not None:
            if self.touch_hits:
                self.actions.touch(key)
            self._event("hit", uid)
            self._accept(uid, record, None, "hit")
        elif key in self.inflight:
            self.inflight[key].append(uid)
        elif self.stop:
            self._cancel(uid, _STOPPED)
        else:
            self._queue(node, key)

    def _await_redone_inputs(self, uid: str) -> bool:
        """An input being recomputed (its stored value went missing or corrupt) has no outputs
        yet: a consumer that became ready meanwhile waits for it instead of reading nothing."""
        states = self.states
        redone = [up for up in self.upstream[uid] if states[up].status == "pending"]
        for up in redone:
            self.waiting_on[uid] += 1
            self.redo_targets.setdefault(up, []).append(uid)
        return bool(redone)

    def _lookup(self, node: PlanNode, state: NodeState, key: str) -> ActionRecord | None:
        hint = self.hints.get(key) if self.hints else None
        if hint is not None and self.actions.objects_present(record_objects(hint.record)):
            if hint.token == node.token:  # same node, same key: same manifest record
                state.manifest_node = hint.manifest_node
            return hint.record
        return self.actions.lookup(key)

    def _queue(self, node: PlanNode, key: str) -> None:
        uid, states = node.uid, self.states
        self.inflight[key] = self.redo_waiters.pop(uid, [])
        inputs = {
            name: task_input(states[ref.uid], ref.output) for name, ref in node.inputs.items()
        }
        seed = node.seed if node.stage.uses_rng else None
        stage = node.stage
        task = Task(
            uid,
            node.node_id,
            stage,
            node.config,
            key,
            inputs,
            seed,
            stage.resources,
            stage.fingerprint,
        )
        self.pending.append(task)
        self._event("queued", uid)

    def _cancel(self, uid: str, error: str, status: str = "cancelled") -> None:
        self.states[uid].error = error
        self._event("skipped", uid, error=error)
        self._finish(uid, status)

    def _finish(self, uid: str, status: str) -> None:
        self.states[uid].status = status
        targets = self.redo_targets.pop(uid, None)
        if targets is not None:  # a recomputed producer: wake only the consumers that asked
            self._release_inputs(uid)
            self._wake(targets)
            return
        self._release_inputs(uid)
        self._wake(self.downstream.get(uid, ()))

    def _wake(self, uids: Iterable[str]) -> None:
        waiting_on = self.waiting_on
        for down in uids:
            waiting_on[down] -= 1
            if waiting_on[down] == 0:
                self.ready.append(down)

    def _release_inputs(self, uid: str) -> None:
        self.ledger.release(uid, self.upstream[uid], lambda up: self.states[up].outputs)

    def _accept(
        self, uid: str, record: ActionRecord, outcome: TaskOutcome | None, status: str
    ) -> None:
        state = self.states[uid]
        state.record, state.outputs, state.outcome = record, record.outputs, outcome
        if (
            outcome is not None
            and outcome.values is not None
            and self.executor.in_memory
            and self.ledger.wanted(uid)
        ):
            self.ledger.hold(record.outputs, outcome.values)
        self._finish(uid, status)

    def _handle(self, outcome: TaskOutcome) -> None:
        uid = outcome.uid
        key = self.running.pop(uid)
        self.started_uids.discard(uid)
        same = self.inflight.pop(key, [])
        for error in outcome.retry_errors:
            self._event("retry", uid, error=error)
        if outcome.record is None and outcome.corrupt and self._recompute_producers(uid, outcome):
            self._event("retry", uid, error=outcome.error)
            self.redo_waiters[uid] = same
            return
        if outcome.record is not None and outcome.found:  # computed by another worker
            self._event("hit", uid)
            self._accept(uid, outcome.record, None, "hit")
            for other in same:
                self._event("hit", other)
                self._accept(other, outcome.record, None, "hit")
            return
        if outcome.record is not None:
            self._event("done", uid, duration_s=outcome.duration_s)
            self._accept(uid, outcome.record, outcome, "miss")
            for other in same:
                self._event("hit", other)
                self._accept(other, outcome.record, outcome, "hit")
            return
        for failed in (uid, *same):
            self.states[failed].outcome = outcome
            self.states[failed].error = outcome.error
            self._event("failed", failed, error=outcome.error)
            self._finish(failed, "failed")
        if self.fail_fast:
            self.stop = True

    def _recompute_producers(self, uid: str, outcome: TaskOutcome) -> bool:
        """Quarantine a corrupt input object and re-run the node(s) that produced it."""
        bad = outcome.corrupt
        if self.redo_count[uid] >= 2:
            return False
        producers = [
            up
            for up in self.upstream[uid]
            if up in self.redo_targets  # already being recomputed for another consumer
            or any(
                bad == e.digest or bad in e.objects
                for e in (self.states[up].outputs or {}).values()
            )
        ]
        if not producers:
            return False
        with contextlib.suppress(FileNotFoundError):  # already moved by a concurrent consumer
            self.store.quarantine(bad)  # type: ignore[arg-type]
        self.redo_count[uid] += 1
        self.states[uid].error = None
        self.waiting_on[uid] = len(producers)
        for up in producers:
            if up not in self.redo_targets:
                self.ledger.reacquire(up, self.upstream[up])  # it reads its inputs again
                up_state = self.states[up]
                up_state.status, up_state.outputs, up_state.record = "pending", None, None
                up_state.manifest_node = None
                self.ready.append(up)
            self.redo_targets.setdefault(up, []).append(uid)
        return True


def execute_plan(
    plan: Iterable[PlanNode], store: Store, executor: Executor, **options: Any
) -> RunOutcome:
    """Run a plan to completion (see :class:`Scheduler` for the options). Never raises for
    stage failures; KeyboardInterrupt is caught, running work is cancelled and the outcome is
    marked interrupted."""
    return Scheduler(plan, store, executor, **options).run()
