"""Running a pipeline: plan it, schedule it, and finish (plan record + manifest).

:func:`finish` is shared by runs and scans: it encodes the node records (reusing those a plan
record already had), stores the plan record that lets the next identical run replay this one,
and writes the manifest.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..artifacts.store import Store, open_store
from ..core.keys import combined_outputs_digest
from ..core.records import OutputEntry, PlanEntry, PlanRecord
from ..core.refs import is_single
from ..executors.factory import make_executor
from ..manifests import writer
from .events import ProgressCallback
from .gc_pause import no_gc_pauses
from .main_guard import check_main_guard
from .outcome import RunOutcome
from .plan import plan_pipeline
from .scheduler import execute_plan

if TYPE_CHECKING:
    from ..manifests.schema import RunManifest
    from .graph import Pipeline


class RunFailedError(RuntimeError):
    """Raised by :meth:`RunResult.raise_on_failure` when nodes failed."""


def plan_record(outcome: RunOutcome, manifest_nodes: list[bytes]) -> PlanRecord | None:
    """The plan record of a complete run (None when it cannot be replayed)."""
    if outcome.plan_digest is None or not outcome.complete:
        return None
    entries = []
    nodes = outcome.nodes
    for (uid, state), manifest_node in zip(outcome.states.items(), manifest_nodes, strict=True):
        if state.key is None or state.record is None:
            return None
        entries.append(
            PlanEntry(
                uid, state.key, state.input_digests, state.record, nodes[uid].token, manifest_node
            )
        )
    return PlanRecord(outcome.plan_digest, entries)


def finish(
    store: Store,
    outcome: RunOutcome,
    latest: str,
    header: Any,
    write: Callable[[bytes], Any] | None,
) -> tuple[bytes, str | None]:
    """Encode the manifest of a finished run or scan (``header`` + node records), remember its
    plan record (or note the replay), and write it with ``write`` (None: not written)."""
    nodes_json, replay_nodes = writer.encode_run_nodes(outcome)
    if outcome.replayed:
        store.actions.note_replayed(outcome.plan_digest, latest)  # type: ignore[arg-type]
    else:
        record = plan_record(outcome, replay_nodes)
        if record is not None:
            store.actions.remember(record, latest)
    manifest = writer.encode_manifest(header, nodes_json)
    path = None
    if write is not None:
        try:
            path = str(write(manifest))
        except OSError as exc:  # the results are stored: report, do not lose the run
            warnings.warn(
                ManifestNotWrittenWarning(
                    f"{exc}; the run's results are cached and returned, but 'physflow show' "
                    "will not list it (free space and re-run to record it)",
                    exc,
                ),
                stacklevel=3,
            )
    return manifest, path


class ManifestNotWrittenWarning(UserWarning):
    """A finished run's manifest could not be written (its results are stored); ``args[1]``
    is the error."""


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
            self._manifest = writer.decode_manifest(self._manifest)
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
        """The digest by which ``ref`` enters downstream keys (all outputs combined for a
        multi-output node)."""
        node_id, _, output = ref.partition(".")
        entries = self.entries(node_id)
        if output:
            return entries[output].digest
        if is_single(entries):
            return entries["value"].digest
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
        elif is_single(entries):
            value = self._load(entries["value"])
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
    check_main_guard(executor)
    store = open_store(store)
    with no_gc_pauses():
        plan = plan_pipeline(pipeline)
    outcome = execute_plan(
        plan,
        store,
        make_executor(executor, workers),
        fail_fast=fail_fast,
        progress=progress,
        order_seed=order_seed,
        touch_hits=not write_manifest,
        latest=pipeline.name,
    )
    with no_gc_pauses():
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        header = writer.run_manifest_header(
            store.location, outcome, run_id, pipeline_facts(pipeline), dict(overrides or {})
        )
        write = (
            (lambda data: writer.write_manifest(store, run_id, data)) if write_manifest else None
        )
        manifest, path = finish(store, outcome, pipeline.name, header, write)
        result = RunResult(pipeline, store, outcome, manifest, path)
    if outcome.interrupted:
        raise KeyboardInterrupt(f"run interrupted; manifest written to {path}")
    return result


def pipeline_facts(pipeline: Pipeline) -> writer.PipelineFacts:
    return writer.PipelineFacts(
        pipeline.name, pipeline.seed, pipeline.spec_path, pipeline.spec_digest
    )
