"""Running one node: load inputs, call the stage, store outputs, write the record.

This is the only place stage code runs, whichever executor is used; workers in other processes
or on a dask cluster call :func:`run_task` with a store location and receive only the small
record back.
"""

from __future__ import annotations

import ctypes
import sqlite3
import sys
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from ..artifacts.errors import CorruptObjectError, MissingObjectError
from ..artifacts.store import Store
from ..core.records import ActionRecord, OutputEntry
from ..executors.base import TaskOutcome
from .rng import GLOBAL_STATE_LOCK, node_generator
from .sharing import MUTABLE as _MUTABLE
from .sharing import read_only as _read_only
from .stage import SINGLE_OUTPUT, Stage, resolve_stage_path


class StageOutputError(TypeError):
    """A stage returned something that does not match its declared outputs."""


@dataclass
class TaskInput:
    """One input of a task: a single stored output, or all outputs of a node as a dict."""

    entry: OutputEntry | None = None
    entries: dict[str, OutputEntry] | None = None


@dataclass
class Task:
    """One miss to compute: what an executor runs (see :class:`physflow.executors.base.Job`)."""

    uid: str
    node_id: str
    stage: Stage
    config: msgspec.Struct | None
    key: str
    inputs: dict[str, TaskInput]
    seed: int | None
    resources: Mapping[str, float] = field(default_factory=dict)
    #: The fingerprint the key was planned with (checked where the stage is imported again).
    planned: str = ""

    @property
    def label(self) -> str:
        return f"node '{self.node_id}'"

    @property
    def retries(self) -> int:
        return self.stage.retries

    def preflight(self) -> str | None:
        """Why another process could not load this task's stage by its import path."""
        return import_problem(self.stage, self.node_id)

    def __call__(self, store: Store, memory: Any, keep_values: bool) -> TaskOutcome:
        return run_task(self, store, memory, keep_values)


_IMPORTABLE: dict[str, str | None] = {}


def import_problem(stage: Stage, node_id: str) -> str | None:
    """A message when ``stage`` cannot be imported by its name in a worker (None when it can)."""
    name = stage.name
    if name not in _IMPORTABLE:
        try:
            ok = resolve_stage_path(name) is stage
            _IMPORTABLE[name] = None if ok else f"{name} names another object"
        except Exception as exc:
            _IMPORTABLE[name] = f"{type(exc).__name__}: {exc}"
    problem = _IMPORTABLE[name]
    if problem is None:
        return None
    return (
        f"StageNotImportable: stage {name} of node '{node_id}' cannot be loaded by import path "
        f"({problem}); stages must be importable on the workers: define them at module level "
        "in a module on the workers' PYTHONPATH"
    )


_warned_global_rng: set[str] = set()


def _load(store: Store, entry: OutputEntry, memory: Mapping[str, Any] | None) -> Any:
    """An input value, read-only wherever it holds arrays, whichever executor runs the stage:
    in-memory values are shared with other consumers, and the same stage must behave alike on
    every executor (a stage that modifies its input fails everywhere, with a hint)."""
    if memory is not None and entry.digest in memory:
        shared = _read_only(memory[entry.digest])
        if shared is not _MUTABLE:
            return shared
    value = store.get_value(entry)
    shared = _read_only(value)
    return value if shared is _MUTABLE else shared


def load_inputs(task: Task, store: Store, memory: Mapping[str, Any] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, inp in task.inputs.items():
        if name in task.stage.lazy_inputs:
            values[name] = _lazy(store, inp)
        elif inp.entry is not None:
            values[name] = _load(store, inp.entry, memory)
        else:
            assert inp.entries is not None
            values[name] = {k: _load(store, e, memory) for k, e in inp.entries.items()}
    return values


def _lazy(store: Store, inp: TaskInput) -> Any:
    from ..artifacts.lazy import open_lazy

    if inp.entry is not None:
        return open_lazy(store, inp.entry)
    assert inp.entries is not None
    return {k: open_lazy(store, e) for k, e in inp.entries.items()}


def split_outputs(stage: Stage, result: Any) -> dict[str, Any]:
    """Map a stage's return value to its named outputs (one clean convention, see docs)."""
    if stage.outputs is None:
        return {SINGLE_OUTPUT: result}
    if isinstance(result, msgspec.Struct):
        result = {f: getattr(result, f) for f in type(result).__struct_fields__}
    if not isinstance(result, Mapping):
        raise StageOutputError(
            f"stage {stage.name} declares outputs {list(stage.outputs)} but returned a "
            f"{type(result).__qualname__}; return a dict (or Struct) with those keys."
        )
    missing = [k for k in stage.outputs if k not in result]
    extra = [k for k in result if k not in stage.outputs]
    if missing or extra:
        raise StageOutputError(
            f"stage {stage.name} declares outputs {list(stage.outputs)} but returned keys "
            f"{list(result)} (missing: {missing or 'none'}, undeclared: {extra or 'none'})."
        )
    return {k: result[k] for k in stage.outputs}


_MT_STATE_BYTES = 624 * 4 + 4  # numpy's mt19937_state struct: uint32 key[624], int pos
_mt_address: tuple[Any, int] | None = None


def _global_state() -> tuple[Any, ...]:
    """Snapshot numpy's global MT19937 state as raw bytes (~1 us; ``get_state`` costs ~40 us).

    Only the generator's words and position are compared and restored; a stage that merely
    consumes the legacy cached Gaussian goes unnoticed (it does not move the generator).
    """
    global _mt_address
    try:
        bit_generator = np.random.mtrand._rand._bit_generator
        if _mt_address is None or _mt_address[0] is not bit_generator:
            _mt_address = (bit_generator, bit_generator.ctypes.state_address)
        address = _mt_address[1]
        return ("raw", address, ctypes.string_at(address, _MT_STATE_BYTES))
    except AttributeError:  # another numpy layout: the slow, exact way
        return ("full", np.random.get_state())


def _same_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if a[0] == "raw":
        return a == b
    x, y = a[1], b[1]
    return x[0] == y[0] and x[2:] == y[2:] and np.array_equal(x[1], y[1])


def _restore_state(state: tuple[Any, ...]) -> None:
    if state[0] == "raw":
        ctypes.memmove(state[1], state[2], _MT_STATE_BYTES)
    else:
        np.random.set_state(state[1])


def call_stage(task: Task, inputs: dict[str, Any], ctx: Any = None) -> tuple[Any, list[str]]:
    """Call the stage function; restore (and warn about) any change to global numpy RNG state."""
    stage = task.stage
    kwargs = dict(inputs)
    if stage.uses_rng:
        assert task.seed is not None
        kwargs["rng"] = node_generator(task.seed, task.node_id)
    if stage.uses_ctx:
        kwargs["ctx"] = ctx
    return invoke_stage(stage, task.node_id, task.config, kwargs)


def invoke_stage(
    stage: Stage, node_id: str, config: Any, kwargs: dict[str, Any]
) -> tuple[Any, list[str]]:
    """``stage.func(config, **kwargs)`` with numpy's global random state guarded: a stage that
    changes it gets it restored (and one warning), so results never depend on call order."""
    args = (config,) if stage.config_type is not None else ()
    modules_before = len(sys.modules)
    with GLOBAL_STATE_LOCK:
        before = _global_state()
    try:
        result = stage.func(*args, **kwargs)
    finally:
        notes: list[str] = []
        with GLOBAL_STATE_LOCK:
            changed = not _same_state(before, _global_state())
            if changed:
                _restore_state(before)
        if changed and stage.name not in _warned_global_rng:
            _warned_global_rng.add(stage.name)
            message = _global_rng_message(stage.name, node_id, len(sys.modules) > modules_before)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            notes.append(message)
    return result, notes


def _global_rng_message(stage: str, node_id: str, imported: bool) -> str:
    message = (
        f"stage {stage} (node '{node_id}') changed numpy's global random state; physflow "
        "restored it. Use the keyword-only 'rng' parameter instead: global state makes results "
        "depend on execution order."
    )
    if imported:  # e.g. importing jax draws from numpy's global generator
        message += (
            " It also imported modules during the call: if the stage itself draws no global "
            "random numbers, an import did; import those libraries at module level."
        )
    return message


def _put_output(task: Task, store: Store, name: str, value: Any) -> OutputEntry:
    """Store one output; a value without a codec is an error naming the stage and output."""
    from ..artifacts.inline import UnsupportedValueError

    try:
        return store.put_value(
            value, allow_pickle=task.stage.allow_pickle, compress=task.stage.compress
        )
    except UnsupportedValueError as exc:
        raise UnsupportedValueError(
            f"stage {task.stage.name} (node '{task.node_id}'), output '{name}': {exc}"
        ) from None
    except OSError as exc:  # a full disk, a read-only store: say where and what
        raise StoreWriteError(
            f"could not store output '{name}' of node '{task.node_id}' in the store at "
            f"{store.location}: {exc.strerror or exc}. Free space (physflow cache gc) or use "
            "another store; nothing partial was kept."
        ) from None


class StoreWriteError(OSError):
    """A result could not be written into the store (the message names store and node)."""


def _record(task: Task, store: Store, record: ActionRecord) -> None:
    """Write the record (after its outputs); a failure names the store and the node."""
    try:
        store.put_action(record)
    except (OSError, sqlite3.OperationalError) as exc:
        raise StoreWriteError(
            f"could not record the result of node '{task.node_id}' in the store at "
            f"{store.location}: {exc}. Free space (physflow cache gc) or use another store."
        ) from None


def _attempt(
    task: Task, store: Store, memory: Mapping[str, Any] | None
) -> tuple[ActionRecord, dict[str, Any], list[str]]:
    """One try: load inputs, call the stage, store its outputs, then its record (last)."""
    t0 = time.perf_counter()
    ctx = None
    try:
        inputs = load_inputs(task, store, memory)
        if task.stage.uses_ctx:
            from ..artifacts.context import StageContext

            ctx = StageContext(store, task)
        result, notes = call_stage(task, inputs, ctx)
        named = split_outputs(task.stage, result)
        entries = {}
        for name, value in named.items():
            if ctx is not None and ctx.owns(value):
                entries[name] = ctx.entry_for(value)
            else:
                entries[name] = _put_output(task, store, name, value)
    except BaseException:
        if ctx is not None:
            ctx.abort()
        raise
    record = ActionRecord(
        key=task.key,
        stage=task.stage.name,
        fingerprint=task.stage.fingerprint,
        outputs=entries,
        created=time.time(),
        duration_s=time.perf_counter() - t0,
        node_id=task.node_id,
    )
    _record(task, store, record)
    return record, named, notes


def _describe_failure(exc: Exception) -> str:
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ValueError) and "read-only" in str(exc):
        error += (
            " (stage inputs are shared and read-only: copy before modifying in place, "
            "e.g. 'x = x.copy()')"
        )
    return error


def _changed_message(task: Task) -> str:
    return (
        f"StageChanged: the source of stage {task.stage.name} changed during the run: this "
        f"worker imported code with fingerprint {task.stage.fingerprint[:15]}..., the run was "
        f"planned with {task.planned[:15]}...; its result would be filed under the old code's "
        "key, so it was not run. Re-run the pipeline (it plans with the new code)."
    )


def run_task(
    task: Task, store: Store, memory: Mapping[str, Any] | None = None, keep_values: bool = False
) -> TaskOutcome:
    """Run one task to completion (with the stage's retries); never raises for stage errors.

    On a store opened with ``claims=ttl``, of several workers that reach the same missing key
    at once one computes it; the others wait, then return its record (``found``)."""
    if task.planned and task.stage.fingerprint != task.planned:
        return TaskOutcome(uid=task.uid, record=None, error=_changed_message(task))
    claims = store.claims if hasattr(store, "claims") else None
    if claims is None or not claims.exclusive:
        return _compute(task, store, memory, keep_values)

    def lookup() -> TaskOutcome | None:
        record = store.actions.lookup(task.key)
        return None if record is None else TaskOutcome(uid=task.uid, record=record, found=True)

    outcome, _computed = claims.run_once(
        task.key, lookup, lambda: _compute(task, store, memory, keep_values), ttl=store.claims_ttl
    )
    return outcome


def _compute(
    task: Task, store: Store, memory: Mapping[str, Any] | None, keep_values: bool
) -> TaskOutcome:
    started = time.time()
    failures: list[tuple[str, str]] = []  # (error, traceback) of each failed attempt
    while len(failures) <= task.stage.retries:
        try:
            record, named, notes = _attempt(task, store, memory)
        except (CorruptObjectError, MissingObjectError) as exc:  # a bad input: recompute it
            return TaskOutcome(
                uid=task.uid,
                record=None,
                error=f"corrupt input: {exc}",
                traceback=traceback.format_exc(),
                attempts=len(failures) + 1,
                started=started,
                duration_s=time.time() - started,
                retry_errors=[e for e, _ in failures],
                corrupt=getattr(exc, "digest", None) or "?",
            )
        except Exception as exc:  # a stage error is a node failure, not a runner crash
            failures.append((_describe_failure(exc), traceback.format_exc()))
            continue
        return TaskOutcome(
            uid=task.uid,
            record=record,
            attempts=len(failures) + 1,
            started=started,
            duration_s=record.duration_s,
            values=named if keep_values else None,
            warnings=notes,
            retry_errors=[e for e, _ in failures],
        )
    return TaskOutcome(
        uid=task.uid,
        record=None,
        error=failures[-1][0],
        traceback=failures[-1][1],
        attempts=len(failures),
        started=started,
        duration_s=time.time() - started,
        retry_errors=[e for e, _ in failures[:-1]],
    )
