"""Planning a scan: every point planned together, identical work shared.

Planning is structural: a node whose stage, config, upstream plan nodes and (if it uses ``rng``)
seed are the same in two points is the *same* plan node, so a transmitter upstream of an SNR
scan is planned, looked up and run once. Only configs touched by an axis are rebuilt (once per
distinct value, not per point), and config digests are memoised, so planning 1,000 points costs
little.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.refs import Ref, RefError, resolve_ref
from ..core.suggest import did_you_mean
from ..pipeline.graph import Pipeline, PipelineError
from ..pipeline.overrides import set_nested, split_path
from ..pipeline.plan import InputRef, PlanNode, config_digest
from .axes import SEED_AXIS, ScanError, ScanPoints


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
    """Validate collected references; ``"node"`` of a multi-output stage means all its outputs,
    ``"node.output.key"`` an entry of a dict output (e.g. ``"power.metrics.power"``).

    With nothing to collect, the pipeline's sinks (nodes nothing depends on) are collected.
    """
    if isinstance(collect, str):
        collect = [collect]
    names = list(collect)
    if not names:
        used = {ref.node for node in pipeline.nodes.values() for ref in node.inputs.values()}
        names = [node_id for node_id in pipeline.nodes if node_id not in used]
    outputs_of = {n: node.stage.output_names for n, node in pipeline.nodes.items()}
    refs: list[Ref] = []
    for text in names:
        try:
            ref = resolve_ref(text, outputs_of, allow_key=True)
        except RefError as exc:
            raise ScanError(f"collect {exc}") from None
        outputs = pipeline.nodes[ref.node].stage.outputs
        if ref.output is None and outputs is not None:
            refs.extend(Ref(ref.node, o) for o in outputs)
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
                f"{did_you_mean(node_id, pipeline.nodes)}"
            )
        if node.config is None:
            raise ScanError(f"scan axis '{path}': node '{node_id}' has no config to scan.")
        by_node.setdefault(node_id, []).append((a, fields, path))
    return by_node


def _set_field(config: Any, fields: list[str], value: Any, path: str) -> Any:
    """``config`` with ``fields`` set to ``value``, validated like any override."""
    try:
        return set_nested(config, fields, value, path)
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
