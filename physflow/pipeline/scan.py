"""Parameter scans: every point planned together, run once, returned as an ``xarray.Dataset``.

All points become one plan for :func:`~physflow.pipeline.runner.execute_plan`. Planning is
structural: a node whose stage, config, upstream plan nodes and (if it uses ``rng``) seed are
the same in two points is the *same* plan node, so a transmitter upstream of an SNR scan is
planned, looked up and run once. Only configs touched by an axis are rebuilt (once per distinct
value, not per point), and config digests are memoised, so planning 1,000 points costs little.
Caching makes scans incremental: extending an axis runs only new points, and an interrupted
scan resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from ..artifacts.inline import INLINE_MAX_BYTES
from ..artifacts.store import Store, open_store
from ..executors.factory import make_executor
from .gc_pause import no_gc_pauses
from .graph import Pipeline, PipelineError, Ref, suggest
from .overrides import _set_nested, split_path
from .plan import InputRef, PlanNode, config_digest
from .runner import RunOutcome, execute_plan, note_replayed, remember_plan
from .scan_axes import SEED_AXIS, ScanError, ScanPoints, build_points
from .scan_dataset import Collected, build_dataset
from .stage import SINGLE_OUTPUT

if TYPE_CHECKING:
    from ..manifests.scan_manifest import ScanManifest
    from .events import ProgressCallback

__all__ = [
    "ScanError",
    "ScanPlan",
    "ScanResult",
    "plan_scan",
    "resolve_collect",
    "run_scan",
    "scan",
]


class ScanPlan:
    """The combined plan of a scan, and which plan node serves each (point, node)."""

    def __init__(
        self,
        nodes: list[PlanNode],
        point_uids: list[dict[str, str]],
        seeds: list[int],
        order: list[str],
    ) -> None:
        self.nodes = nodes
        self.point_uids = point_uids
        self.seeds = seeds
        self.order = order


def resolve_collect(pipeline: Pipeline, collect: Iterable[str]) -> list[Ref]:
    """Validate collected references; ``"node"`` of a multi-output stage means all its outputs.

    With nothing to collect, the pipeline's sinks (nodes nothing depends on) are collected.
    """
    if isinstance(collect, str):
        collect = [collect]
    names = list(collect)
    if not names:
        used = {ref.node for node in pipeline.nodes.values() for ref in node.inputs.values()}
        names = [node_id for node_id in pipeline.nodes if node_id not in used]
    refs: list[Ref] = []
    for text in names:
        if not isinstance(text, str) or not text:
            raise ScanError(f"collect entries are 'node' or 'node.output' strings, got {text!r}.")
        ref = Ref.parse(text)
        node = pipeline.nodes.get(ref.node)
        if node is None:
            raise ScanError(
                f"collect '{text}': no node '{ref.node}' in pipeline '{pipeline.name}'."
                f"{suggest(ref.node, pipeline.nodes)} Nodes: {', '.join(pipeline.nodes)}."
            )
        outputs = node.stage.outputs
        if ref.output is None:
            refs.extend([ref] if outputs is None else [Ref(ref.node, o) for o in outputs])
        elif outputs is None or ref.output not in outputs:
            valid = ", ".join(f"'{ref.node}.{o}'" for o in outputs) if outputs else f"'{ref.node}'"
            raise ScanError(
                f"collect '{text}': node '{ref.node}' has no output '{ref.output}'."
                f"{suggest(ref.output, outputs or ())} Valid: {valid}."
            )
        else:
            refs.append(ref)
    return refs


def _axis_fields(
    pipeline: Pipeline, paths: list[str]
) -> dict[str, list[tuple[int, list[str], str]]]:
    """Group parameter paths by node: node id -> [(axis position, field path, path)]."""
    by_node: dict[str, list[tuple[int, list[str], str]]] = {}
    for a, path in enumerate(paths):
        if path == SEED_AXIS:
            continue
        node_id, fields = split_path(path)
        node = pipeline.nodes.get(node_id)
        if node is None:
            raise ScanError(
                f"scan axis '{path}': no node '{node_id}' in pipeline '{pipeline.name}'."
                f"{suggest(node_id, pipeline.nodes)}"
            )
        if node.config is None:
            raise ScanError(f"scan axis '{path}': node '{node_id}' has no config to scan.")
        by_node.setdefault(node_id, []).append((a, fields, path))
    return by_node


def _set_field(config: Any, fields: list[str], value: Any, path: str) -> Any:
    """``config`` with ``fields`` set to ``value``, validated like any override."""
    try:
        return _set_nested(config, fields, value, path)
    except PipelineError as exc:
        raise ScanError(f"scan axis {exc}") from None


def _affected(
    pipeline: Pipeline, order: list[str], by_node: Mapping[str, Any], seed_scanned: bool
) -> set[str]:
    """Nodes whose work can differ between points: scanned configs, rng users when the seed
    is scanned, and everything downstream of those."""
    affected: set[str] = set()
    for node_id in order:
        node = pipeline.nodes[node_id]
        if (
            node_id in by_node
            or (seed_scanned and node.stage.uses_rng)
            or any(ref.node in affected for ref in node.inputs.values())
        ):
            affected.add(node_id)
    return affected


def plan_scan(pipeline: Pipeline, points: ScanPoints) -> ScanPlan:
    """Plan every point, sharing plan nodes whose work is identical (see module docstring)."""
    order = pipeline.validate()
    by_node = _axis_fields(pipeline, points.paths)
    seed_axis = points.paths.index(SEED_AXIS) if SEED_AXIS in points.paths else None
    affected = _affected(pipeline, order, by_node, seed_axis is not None)
    configs: dict[tuple[Any, ...], Any] = {}
    digests: dict[int, tuple[Any, str]] = {}
    shared: dict[tuple[Any, ...], str] = {}
    refs: dict[tuple[str, str | None], InputRef] = {}
    plan: list[PlanNode] = []
    point_uids: list[dict[str, str]] = []
    seeds: list[int] = []
    base_seed = pipeline.seed
    nodes = [(node_id, pipeline.nodes[node_id], node_id in affected) for node_id in order]
    fixed: dict[str, str] = {}  # unaffected node -> its one plan node (planned at point 0)
    for p, (values, index) in enumerate(zip(points.values, points.index)):
        seed = base_seed if seed_axis is None else values[seed_axis]
        seeds.append(seed)
        uids: dict[str, str] = {}
        for node_id, node, varies in nodes:
            if not varies and p:
                uids[node_id] = fixed[node_id]
                continue
            config = node.config
            fields = by_node.get(node_id)
            if fields:
                ckey = (node_id, *(index[a] for a, _, _ in fields))
                config = configs.get(ckey)
                if config is None:
                    config = node.config
                    for a, path_fields, path in fields:
                        config = _set_field(config, path_fields, values[a], path)
                    configs[ckey] = config
            cdigest = config_digest(config, digests)
            inputs = tuple((name, uids[ref.node], ref.output) for name, ref in node.inputs.items())
            skey = (node_id, cdigest, inputs, seed if node.stage.uses_rng else None)
            uid = shared.get(skey)
            if uid is None:
                uid = f"{p}/{node_id}"
                shared[skey] = uid
                wired = {}
                for name, up, out in inputs:
                    ref = refs.get((up, out))
                    if ref is None:
                        ref = refs[(up, out)] = InputRef(up, out)
                    wired[name] = ref
                plan.append(
                    PlanNode(
                        uid=uid,
                        node_id=node_id,
                        stage=node.stage,
                        config=config,
                        config_digest=cdigest,
                        inputs=wired,
                        seed=seed,
                    )
                )
            uids[node_id] = uid
            if not varies:
                fixed[node_id] = uid
        point_uids.append(uids)
    return ScanPlan(plan, point_uids, seeds, order)


def _collected(refs: list[Ref], splan: ScanPlan, outcome: RunOutcome) -> list[Collected]:
    out = []
    states = outcome.states
    for ref in refs:
        output = ref.output or SINGLE_OUTPUT
        entries = []
        for uids in splan.point_uids:
            state = states[uids[ref.node]]
            entries.append(state.outputs[output] if state.outputs is not None else None)
        out.append(Collected(str(ref), entries))
    return out


def _json_coords(points: ScanPoints) -> dict[str, list[Any]]:
    from ..manifests.writer import _json_hook

    def plain(v: Any) -> Any:
        try:
            return _json_hook(v)
        except NotImplementedError:
            return v

    return {
        name: [plain(v) if not isinstance(v, int | float | str | bool) else v for v in vals]
        for name, (_, vals) in points.coords.items()
    }


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
    from ..manifests.scan_manifest import (
        ScanPoint,
        build_scan_manifest,
        new_scan_id,
        point_status,
        write_scan_manifest,
    )
    from ..manifests.writer import encode_manifest, encode_run_nodes

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
        # node records a plan record already had are reused as encoded; the rest built now
        nodes_json, replay_nodes = encode_run_nodes(outcome)
        if outcome.replayed:
            note_replayed(store, outcome, f"scan:{pipeline.name}")
        else:  # the next run of this same scan reads one record
            remember_plan(store, outcome, replay_nodes, latest=f"scan:{pipeline.name}")
        records = []
        for p, uids in enumerate(splan.point_uids):
            status, error, failed_node = point_status(splan.order, uids, outcome)
            records.append(
                ScanPoint(
                    index=spoints.position(p),
                    values=spoints.point_values(p),
                    seed=splan.seeds[p],
                    status=status,
                    nodes=uids,
                    error=error,
                    failed_node=failed_node,  # type: ignore[arg-type]
                )
            )
        header = build_scan_manifest(
            pipeline,
            store,
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
        manifest_json = encode_manifest(header, nodes_json)
        manifest_path = (
            str(write_scan_manifest(store, header.scan_id, manifest_json)) if write_manifest else ""
        )
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
