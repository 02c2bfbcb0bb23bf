"""Running a scan: all points as one plan (see :mod:`.plan`), run once by the pipeline's
scheduler, finished like a run (plan record + manifest), returned as an ``xarray.Dataset``.

Caching makes scans incremental: extending an axis runs only new points, and an interrupted
scan resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..artifacts.inline import INLINE_MAX_BYTES
from ..artifacts.store import Store, open_store
from ..core.refs import Ref
from ..executors.factory import make_executor
from ..manifests.scan_manifest import (
    ScanManifest,
    ScanPoint,
    build_scan_manifest,
    new_scan_id,
    point_status,
    write_scan_manifest,
)
from ..manifests.writer import json_scalar
from ..pipeline.events import ProgressCallback
from ..pipeline.gc_pause import no_gc_pauses
from ..pipeline.graph import Pipeline
from ..pipeline.main_guard import check_main_guard
from ..pipeline.outcome import RunOutcome
from ..pipeline.run import finish, pipeline_facts
from ..pipeline.scheduler import execute_plan
from .axes import ScanError, ScanPoints, build_points
from .dataset import Collected, build_dataset
from .plan import ScanPlan, plan_scan, resolve_collect

__all__ = [
    "ScanError",
    "ScanPlan",
    "ScanResult",
    "plan_scan",
    "resolve_collect",
    "run_scan",
    "scan",
]


def _collected(refs: list[Ref], splan: ScanPlan, outcome: RunOutcome) -> list[Collected]:
    out = []
    states = outcome.states
    for ref in refs:
        output = ref.output or "value"
        entries = []
        for uids in splan.point_uids:
            state = states[uids[ref.node]]
            entries.append(state.outputs[output] if state.outputs is not None else None)
        out.append(Collected(str(ref), entries, ref.key))
    return out


def _json_coords(points: ScanPoints) -> dict[str, list[Any]]:
    return {name: [json_scalar(v) for v in vals] for name, (_, vals) in points.coords.items()}


def scan(
    pipeline: Pipeline,
    axes: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    collect: Iterable[str] = (),
    *,
    mode: str = "grid",
    points: list[Mapping[str, Any]] | None = None,
    sample: Mapping[str, Any] | None = None,
    store: Store | str | None = None,
    executor: Any = "serial",
    workers: int | None = None,
    fail_fast: bool = False,
    progress: ProgressCallback | None = None,
    write_manifest: bool = True,
    lazy_bytes: int = INLINE_MAX_BYTES,
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """Run ``pipeline`` at every point of a scan; return an ``xarray.Dataset``.

    ``axes`` maps ``"node.field"`` paths (and ``"seed"``) to value lists, combined by ``mode``
    (``"grid"``: cartesian product, one dimension per axis; ``"zip"``: position by position,
    dimension ``"point"``). Alternatively ``points=[{path: value}, ...]`` or
    ``sample={"n": 64, "method": "sobol", "seed": 0, "ranges": {path: [low, high]}}`` (both
    along ``"point"``). ``collect`` names outputs (``"node"`` or ``"node.output"``) that become
    variables named the same way. Failed points are NaN and their errors are in the scan
    manifest (``ds.attrs["manifest_path"]``); the other points still run unless ``fail_fast``.
    """
    result = run_scan(
        pipeline,
        axes,
        collect,
        mode=mode,
        points=points,
        sample=sample,
        store=store,
        executor=executor,
        workers=workers,
        fail_fast=fail_fast,
        progress=progress,
        write_manifest=write_manifest,
        overrides=overrides,
    )
    return result.dataset(lazy_bytes)


@dataclass
class ScanResult:
    """Everything a scan produced, before it becomes a dataset (the CLI and harnesses use it)."""

    pipeline: Pipeline
    points: ScanPoints
    refs: list[Ref]
    plan: ScanPlan
    outcome: RunOutcome
    store: Store
    #: The manifest without node records (``nodes`` empty); :attr:`manifest` has them all.
    header: ScanManifest
    manifest_json: bytes
    manifest_path: str

    @property
    def manifest(self) -> ScanManifest:
        """The whole scan manifest (decoded from its JSON on first use)."""
        decoded = self.__dict__.get("_manifest")
        if decoded is None:
            decoded = self.__dict__["_manifest"] = msgspec.json.decode(
                self.manifest_json, type=type(self.header)
            )
        return decoded

    def dataset(self, lazy_bytes: int = INLINE_MAX_BYTES) -> Any:
        m = self.header
        attrs = {
            "physflow_scan_id": m.scan_id,
            "manifest_path": self.manifest_path,
            "pipeline": self.pipeline.name,
            "mode": self.points.mode,
            "store": self.store.location,
            "points": len(self.points),
            "points_failed": m.points_failed,
            "hits": m.hits,
            "misses": m.misses,
        }
        with no_gc_pauses():
            collected = _collected(self.refs, self.plan, self.outcome)
            return build_dataset(self.points, collected, self.store, attrs, lazy_bytes)


def run_scan(
    pipeline: Pipeline,
    axes: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    collect: Iterable[str] = (),
    *,
    mode: str = "grid",
    points: list[Mapping[str, Any]] | None = None,
    sample: Mapping[str, Any] | None = None,
    store: Store | str | None = None,
    executor: Any = "serial",
    workers: int | None = None,
    fail_fast: bool = False,
    progress: ProgressCallback | None = None,
    write_manifest: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> ScanResult:
    """Plan and run a scan and write its manifest (see :func:`scan` for the arguments).

    Raises KeyboardInterrupt (after writing the manifest) when the scan was interrupted.
    """
    check_main_guard(executor)
    with no_gc_pauses():
        spoints = build_points(axes, mode=mode, points=points, sample=sample)
        refs = resolve_collect(pipeline, collect)
        splan = plan_scan(pipeline, spoints)
        store = open_store(store)
        runner = make_executor(executor, workers)
    # stage code may run in this process: the collector stays on while it does
    outcome = execute_plan(
        splan.nodes,
        store,
        runner,
        fail_fast=fail_fast,
        progress=progress,
        touch_hits=not write_manifest,
        latest=f"scan:{pipeline.name}",
    )
    with no_gc_pauses():
        header = _scan_header(pipeline, store, outcome, spoints, splan, refs, overrides)
        scan_id = header.scan_id
        write = (lambda data: write_scan_manifest(store, scan_id, data)) if write_manifest else None
        manifest_json, path = finish(store, outcome, f"scan:{pipeline.name}", header, write)
        manifest_path = path or ""
        records = header.points
    if outcome.interrupted:
        done = sum(1 for r in records if r.status == "ok")
        raise KeyboardInterrupt(
            f"scan interrupted with {done} of {len(records)} points complete; manifest "
            f"{manifest_path or '(not written)'}. Run the same scan again to resume: finished "
            "work is cached."
        )
    return ScanResult(
        pipeline, spoints, refs, splan, outcome, store, header, manifest_json, manifest_path
    )


def _scan_header(
    pipeline: Pipeline,
    store: Store,
    outcome: RunOutcome,
    spoints: ScanPoints,
    splan: ScanPlan,
    refs: list[Ref],
    overrides: Mapping[str, Any] | None,
) -> ScanManifest:
    """The scan manifest without node records: one record per point."""
    records = []
    for p, uids in enumerate(splan.point_uids):
        status, error, failed_node = point_status(splan.order, uids, outcome)
        records.append(
            ScanPoint(
                index=spoints.position(p),
                values=spoints.point_values(p),
                seed=splan.seeds[p],
                status=status,  # type: ignore[arg-type]
                nodes=uids,
                error=error,
                failed_node=failed_node,
            )
        )
    return build_scan_manifest(
        pipeline_facts(pipeline),
        store.location,
        outcome,
        scan_id=new_scan_id(),
        mode=spoints.mode,
        dims=spoints.dims,
        shape=spoints.shape,
        coords=_json_coords(spoints),
        collect=[str(r) for r in refs],
        points=records,
        overrides=dict(overrides or {}),
        sample=spoints.sample,
    )
