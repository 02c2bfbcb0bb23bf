"""The lab-loop compiler: ``Compiler(store=...).prepare_point(program) -> PointReport``.

A scan driver calls ``prepare_point`` at every point. The program is resolved in-process; each
segment's resolved content is compared with the previous point's and looked up in an in-memory
tier (content -> synthesised wave); only contents found in neither go to the store, through a
small physflow pipeline (``awg.content`` -> ``awg.segment`` per missing segment) whose keys are
exactly those of the YAML/Python pipelines. A point whose segments are all in memory touches no
disk. The first point, and points with many new segments (cold compiles), run that pipeline on
physflow's threads or processes executor and wait for it. With ``persist="background"`` (the
default) a point with at most ``fast_misses`` new segments synthesises them in this thread and
the store write happens on a background thread (the stage takes the finished wave, it does not
recompute); ``persist="sync"`` always waits for the store.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

import physflow as pf

from . import stages
from .builder import Program
from .model import ProgramConfig, SegmentContent, SegmentWave, StepTable
from .resolve import resolve
from .synth import array_module as _array_module
from .waveform import Waveform

Persist = Literal["sync", "background"]
#: Contents remembered as stored (so an evicted one is read back, not recomputed).
STORED_INDEX = 1 << 16


@dataclass(frozen=True)
class PointReport:
    """What one ``prepare_point`` did. ``changed_segments``: names whose samples differ from
    the previous point's (upload these); when ``layout_changed`` (segments added, removed,
    resized, reordered) the step table changed too: upload everything (the slow path)."""

    changed_segments: tuple[str, ...]
    waveform: Waveform
    seconds: float
    synthesised: tuple[str, ...] = ()
    loaded: tuple[str, ...] = ()
    layout_changed: bool = False
    synth_seconds: float = 0.0
    clipped: dict[str, int] = field(default_factory=dict)

    @property
    def upload(self) -> tuple[str, ...]:
        """Segments to send to the card: all of them after a layout change."""
        return self.waveform.names if self.layout_changed else self.changed_segments


def _layout(table: StepTable | None) -> tuple | None:
    if table is None:
        return None
    return (table.names, table.n_samples, table.loops, table.trigger, table.channels)


class Compiler:
    """Per-point compilation with an in-memory tier in front of a physflow store."""

    def __init__(
        self,
        store: Any = None,
        *,
        executor: str = "threads",
        workers: int | None = None,
        persist: Persist = "background",
        fast_misses: int = 2,
        memory_bytes: int = 2 << 30,
        array_module: str = "numpy",
        write_manifests: bool = True,
        name: str = "awg_compiler",
    ) -> None:
        if persist not in ("sync", "background"):
            raise ValueError(f"persist {persist!r}: use 'sync' or 'background'")
        self._xp = _array_module(array_module)  # before touching any store
        if store is None:  # the default store, as Pipeline.run would pick it
            store = os.environ.get("PHYSFLOW_STORE") or ".physflow"
        self.store = store if isinstance(store, pf.Store) else pf.Store(store)
        self.executor, self.workers = executor, workers
        self.persist, self.fast_misses = persist, fast_misses
        self.memory_bytes = memory_bytes
        self.synth_config = stages.SynthConfig(array_module=array_module)  # type: ignore[arg-type]
        self.write_manifests, self.name = write_manifests, name
        self._memory: OrderedDict[SegmentContent, tuple[SegmentWave, Any]] = OrderedDict()
        self._memory_used = 0
        self._prev: tuple[StepTable, tuple[SegmentContent, ...], tuple[Any, ...]] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="awg-store")
        self._pending: list[Future] = []
        self._lock = threading.Lock()
        self._stored: OrderedDict[SegmentContent, None] = OrderedDict()  # known in the store
        self._ctx: Any = None
        self.stats = {"points": 0, "store_runs": 0, "synthesised": 0, "loaded": 0, "memory": 0}

    # -- the lab loop -----------------------------------------------------------------------------

    def prepare_point(self, program: Program | ProgramConfig) -> PointReport:
        """Compile ``program``, reusing every segment whose resolved content is known."""
        t0 = time.perf_counter()
        self._reap()
        cfg = program.config if isinstance(program, Program) else program
        table, contents = resolve(cfg)
        prev_table, prev_contents, prev_entries = self._prev or (None, (), ())
        prev_by_name = dict(zip(prev_table.names, prev_contents)) if prev_table else {}
        entries: list[Any] = [None] * len(contents)
        missing: dict[SegmentContent, list[int]] = {}
        for i, c in enumerate(contents):
            if i < len(prev_contents) and prev_contents[i] == c:
                entries[i] = prev_entries[i]
                continue
            hit = self._memory.get(c)
            if hit is not None:
                self._memory.move_to_end(c)
                self.stats["memory"] += 1
                entries[i] = hit
            else:
                missing.setdefault(c, []).append(i)
        synthesised: list[str] = []
        loaded: list[str] = []
        synth_s = 0.0
        if missing:
            found, synthesised, loaded, synth_s = self._fetch(table, missing)
            for c, idx in missing.items():
                for i in idx:
                    entries[i] = found[c]
        changed = tuple(n for n, c in zip(table.names, contents) if prev_by_name.get(n) != c)
        self._prev = (table, contents, tuple(entries))
        self.stats["points"] += 1
        waveform = Waveform(table, tuple(e[0] for e in entries), tuple(e[1] for e in entries))
        stages.clip_report(table, [w.clipped for w in waveform.waves])  # warns, or raises
        return PointReport(
            changed_segments=changed,
            waveform=waveform,
            seconds=time.perf_counter() - t0,
            synthesised=tuple(synthesised),
            loaded=tuple(loaded),
            layout_changed=_layout(table) != _layout(prev_table),
            synth_seconds=synth_s,
            clipped=waveform.clipped(),
        )

    def _fetch(
        self, table: StepTable, missing: dict[SegmentContent, list[int]]
    ) -> tuple[dict[SegmentContent, Any], list[str], list[str], float]:
        names = {c: table.names[idx[0]] for c, idx in missing.items()}
        fast = self.persist == "background" and self._prev is not None
        if fast and len(missing) <= self.fast_misses:
            with self._lock:  # evicted from memory but stored: read it back, do not recompute
                fast = not any(c in self._stored for c in names)
        if fast:
            return self._synthesise_here(names)
        return self._pool.submit(self._run_store, names).result()

    def _mark_stored(self, contents: Any) -> None:
        with self._lock:
            for c in contents:
                self._stored[c] = None
                self._stored.move_to_end(c)
            while len(self._stored) > STORED_INDEX:
                self._stored.popitem(last=False)

    def _remember(
        self, c: SegmentContent, wave: SegmentWave, copy: bool = False
    ) -> tuple[SegmentWave, Any]:
        """Into the memory tier, read-only (callers must not alter what later points reuse);
        ``copy`` for values read from the store, which may be memory-mapped files."""
        samples = np.array(wave.samples, copy=True) if copy else wave.samples
        samples.flags.writeable = False
        wave = SegmentWave(samples=samples, clipped=wave.clipped, peak=wave.peak, rms=wave.rms)
        entry = (wave, samples if self._xp is np else self._xp.asarray(samples))
        self._memory[c] = entry
        self._memory_used += samples.nbytes
        while self._memory_used > self.memory_bytes and len(self._memory) > 1:
            _, (old, _) = self._memory.popitem(last=False)
            self._memory_used -= old.samples.nbytes
        return entry

    # -- the store tier ---------------------------------------------------------------------------

    def _pipeline(self, names: dict[SegmentContent, str]) -> pf.Pipeline:
        p = pf.Pipeline(self.name)
        for c, name in names.items():
            p.add(f"_c_{name}", stages.content, c)
            p.add(name, stages.segment, self.synth_config, content=f"_c_{name}")
        return p

    def _run_store(
        self, names: dict[SegmentContent, str]
    ) -> tuple[dict[SegmentContent, Any], list[str], list[str], float]:
        """Hit or compute the missing segments through physflow (parallel on the executor)."""
        res = (
            self._pipeline(names)
            .run(
                store=self.store,
                executor=self.executor if len(names) > 1 else "serial",  # no pool for one
                workers=self.workers,
                write_manifest=self.write_manifests,
            )
            .raise_on_failure()
        )
        self.stats["store_runs"] += 1
        misses = set(res.misses)
        durations = {r.id: r.duration_s or 0.0 for r in res.manifest.nodes}
        found = {c: self._remember(c, res[name], copy=True) for c, name in names.items()}
        self._mark_stored(names)
        synthesised = [n for n in names.values() if n in misses]
        loaded = [n for n in names.values() if n not in misses]
        self.stats["synthesised"] += len(synthesised)
        self.stats["loaded"] += len(loaded)
        return found, synthesised, loaded, sum(durations.get(n, 0.0) for n in synthesised)

    def _synthesise_here(
        self, names: dict[SegmentContent, str]
    ) -> tuple[dict[SegmentContent, Any], list[str], list[str], float]:
        """Few misses: synthesise now, store on the background thread (no second synthesis)."""
        if self._ctx is None:
            self._ctx = pf.StageContext(self.store)
        t0 = time.perf_counter()
        found, tokens = {}, []
        for c in names:
            wave = stages.synthesise_wave(c, self.synth_config, self._ctx)
            token = stages.handoff_token(c, self.synth_config)
            stages.offer(token, wave)
            tokens.append(token)
            found[c] = self._remember(c, wave)
        spent = time.perf_counter() - t0
        self._pending.append(self._pool.submit(self._persist, dict(names), tokens))
        self.stats["synthesised"] += len(names)
        return found, list(names.values()), [], spent

    def _persist(self, names: dict[SegmentContent, str], tokens: list[str]) -> None:
        try:
            self._pipeline(names).run(
                store=self.store,
                executor="serial",
                write_manifest=self.write_manifests,
            ).raise_on_failure()
            self.stats["store_runs"] += 1
            self._mark_stored(names)
        finally:
            for token in tokens:  # a node that hit never took its hand-off
                stages.withdraw(token)

    # -- housekeeping -----------------------------------------------------------------------------

    def _reap(self) -> None:
        """Collect finished background writes; a failure is raised here, at the next point."""
        if self._pending and self._pending[0].done():
            done = [f for f in self._pending if f.done()]
            self._pending = [f for f in self._pending if not f.done()]
            for fut in done:
                fut.result()

    def flush(self) -> None:
        """Wait until background store writes are done (raises the first failure)."""
        pending, self._pending = self._pending, []
        for fut in pending:
            fut.result()

    def clear_memory(self) -> None:
        """Drop the in-memory tier (the next point reads the store)."""
        self._memory.clear()
        self._memory_used = 0
        self._prev = None

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Compiler:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
