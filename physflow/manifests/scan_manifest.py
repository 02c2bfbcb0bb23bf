"""The scan manifest: every point's axis values -> the node records that produced it.

A scan plans all points together, and nodes whose work is identical across points are one plan
node (a transmitter upstream of an SNR scan is one record, shared by every point). So the
manifest lists each distinct node once in ``nodes`` (its ``id`` is the plan uid,
``"<first point>/<node>"``), and each point maps its pipeline node ids to those uids.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..core.refs import is_single
from .environment import capture_environment
from .schema import SCHEMA_VERSION, Environment, NodeRecord, StageInfo
from .sealing import DamagedManifestError, check_seal
from .stage_info import stages_of
from .writer import OutcomeFacts, PipelineFacts, manifest_write_error, status_counts

if TYPE_CHECKING:
    from ..artifacts.store import Store

PointStatus = Literal["ok", "failed", "skipped", "cancelled"]
ScanStatus = Literal["ok", "failed", "interrupted"]


class ScanPoint(msgspec.Struct, omit_defaults=True):
    """One point: where it sits in the dataset, its parameter values and its nodes."""

    index: list[int]  # position in the dataset: grid indices, or [i] along "point"
    values: dict[str, Any]  # "node.field" (and "seed") -> value
    seed: int
    status: PointStatus
    nodes: dict[str, str]  # pipeline node id -> id of its record in ScanManifest.nodes
    error: str | None = None  # "node '<id>': <error>" for the first node that failed
    failed_node: str | None = None


class ScanManifest(msgspec.Struct, omit_defaults=True):
    schema_version: int
    scan_id: str
    pipeline: str
    seed: int
    mode: str
    dims: list[str]
    shape: list[int]
    coords: dict[str, list[Any]]
    collect: list[str]
    status: ScanStatus
    store: str
    executor: str
    started: float
    finished: float
    duration_s: float
    environment: Environment
    points: list[ScanPoint]
    nodes: list[NodeRecord]
    kind: Literal["scan"] = "scan"
    spec_path: str | None = None
    spec_digest: str | None = None
    overrides: dict[str, Any] = {}
    sample: dict[str, Any] | None = None
    hits: int = 0
    misses: int = 0
    failed: int = 0
    skipped: int = 0
    #: points with a failed node
    points_failed: int = 0
    #: points that did not finish without failing themselves (cancelled by --fail-fast or an
    #: interrupt, or skipped): run the scan again to complete them
    points_cancelled: int = 0
    #: stage fingerprint -> its parts (for ``physflow explain``)
    stages: dict[str, StageInfo] = {}
    #: blake3 of the file with this field's digest set to 64 zeros (see manifests.sealing):
    #: a damaged or edited manifest is refused instead of shown
    checksum: str | None = None

    def node(self, uid: str) -> NodeRecord:
        for record in self.nodes:
            if record.id == uid:
                return record
        raise KeyError(f"scan {self.scan_id} has no node record '{uid}'")

    def point_nodes(self, i: int) -> dict[str, NodeRecord]:
        """Node id -> record for point ``i`` (records shared with other points included)."""
        by_id = {r.id: r for r in self.nodes}
        return {node_id: by_id[uid] for node_id, uid in self.points[i].nodes.items()}

    def find(self, **values: Any) -> list[int]:
        """Indices of points whose values match, e.g. ``find(**{"noisy.sigma": 0.1})``."""
        return [
            i
            for i, p in enumerate(self.points)
            if all(p.values.get(k) == v for k, v in values.items())
        ]

    def open(self, point: int, ref: str, store: Any = None) -> Any:
        """The value of output ``ref`` (``"node"`` or ``"node.output"``) at point ``point``,
        read from the store the scan used (or ``store``) through the node's action record."""
        from ..artifacts.store import open_store

        node_id, _, output = ref.partition(".")
        records = self.point_nodes(point)
        if node_id not in records:
            raise KeyError(
                f"scan {self.scan_id}: no node '{node_id}' (nodes: {', '.join(records)})"
            )
        record = records[node_id]
        if record.key is None or record.status not in ("hit", "miss"):
            raise KeyError(
                f"point {point}: node '{node_id}' has no outputs ({record.status}: {record.error})"
            )
        opened = open_store(store if store is not None else self.store)
        action = opened.get_action(record.key)
        if action is None:
            raise KeyError(
                f"point {point}: the record of node '{node_id}' is no longer in "
                f"{opened.location} (removed by gc?); run the scan again."
            )
        if not output and not is_single(action.outputs):
            return {k: opened.get_value(e) for k, e in action.outputs.items()}
        name = output or "value"
        if name not in action.outputs:
            raise KeyError(f"node '{node_id}' has no output '{name}' ({', '.join(action.outputs)})")
        return opened.get_value(action.outputs[name])

    @property
    def failures(self) -> dict[int, str]:
        """Point index -> error, for the points that failed."""
        return {i: p.error or p.status for i, p in enumerate(self.points) if p.status == "failed"}

    @property
    def cancelled(self) -> list[int]:
        """Indices of the points that were cancelled or skipped (not failed themselves)."""
        return [i for i, p in enumerate(self.points) if p.status in ("cancelled", "skipped")]


def new_scan_id() -> str:
    return "scan-" + time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def point_status(
    node_ids: list[str], uids: dict[str, str], outcome: OutcomeFacts
) -> tuple[str, str | None, str | None]:
    """(status, error, failed node id) of one point, from its nodes in topological order."""
    status = "ok"
    for node_id in node_ids:
        state = outcome.states[uids[node_id]]
        if state.status == "failed":
            return "failed", f"node '{node_id}': {state.error}", node_id
        if state.status in ("skipped", "cancelled", "pending") and status == "ok":
            status = "cancelled" if state.status != "skipped" else "skipped"
    return status, None, None


def build_scan_manifest(
    pipeline: PipelineFacts,
    store: str,
    outcome: OutcomeFacts,
    *,
    scan_id: str,
    mode: str,
    dims: list[str],
    shape: tuple[int, ...],
    coords: dict[str, list[Any]],
    collect: list[str],
    points: list[ScanPoint],
    overrides: dict[str, Any] | None = None,
    sample: dict[str, Any] | None = None,
) -> ScanManifest:
    """The scan's manifest without its node records (``nodes`` is empty): those are encoded
    one by one by :func:`~physflow.manifests.writer.encode_run_nodes` and spliced in by
    :func:`~physflow.manifests.writer.encode_manifest`."""
    counts = status_counts(outcome)
    points_failed = sum(1 for p in points if p.status == "failed")
    points_cancelled = sum(1 for p in points if p.status in ("cancelled", "skipped"))
    status = (
        "interrupted"
        if outcome.interrupted or (points_cancelled and not points_failed)
        else "failed"
        if points_failed
        else "ok"
    )
    return ScanManifest(
        schema_version=SCHEMA_VERSION,
        scan_id=scan_id,
        pipeline=pipeline.name,
        seed=pipeline.seed,
        mode=mode,
        dims=list(dims),
        shape=list(shape),
        coords=coords,
        collect=list(collect),
        status=status,  # type: ignore[arg-type]
        store=store,
        executor=outcome.executor,
        started=outcome.started,
        finished=outcome.finished,
        duration_s=outcome.finished - outcome.started,
        environment=capture_environment(),
        points=points,
        nodes=[],
        spec_path=pipeline.spec_path,
        spec_digest=pipeline.spec_digest,
        overrides=dict(overrides or {}),
        sample=sample,
        hits=counts["hit"],
        misses=counts["miss"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        points_failed=points_failed,
        points_cancelled=points_cancelled,
        stages=stages_of(outcome.nodes.values()),
    )


def write_scan_manifest(store: Store, scan_id: str, data: bytes) -> Path:
    """Write an encoded scan manifest atomically; returns its path."""
    path = store.manifest_path(scan_id)
    try:
        store.write_bytes_atomic(path, data)
    except OSError as exc:
        raise manifest_write_error(path, exc) from exc
    return path


def load_scan_manifest(path: str | Path) -> ScanManifest:
    """Read a scan manifest written by :func:`write_scan_manifest`."""
    data = Path(path).read_bytes()
    try:
        check_seal(data)
    except DamagedManifestError as exc:
        raise DamagedManifestError(f"{path}: {exc}") from None
    try:
        return msgspec.json.decode(data, type=ScanManifest, strict=False)  # "nan" metrics
    except msgspec.ValidationError as exc:
        raise ValueError(f"{path}: not a physflow scan manifest ({exc})") from None


def scan_manifest_schema() -> dict[str, Any]:
    """JSON Schema of the scan manifest (for harnesses validating what they read)."""
    return msgspec.json.schema(ScanManifest)
