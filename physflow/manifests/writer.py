"""Building run manifests from a run's outcome and writing them atomically into the store.

The writer takes plain data: the runner's plan nodes, node states and run outcome are read by
attribute (the :class:`NodeFacts` / :class:`StateFacts` / :class:`OutcomeFacts` protocols), and
the pipeline by :class:`PipelineFacts`, so manifests never import the engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import numpy as np

from ..core.records import OutputEntry
from .environment import capture_environment
from .schema import SCHEMA_VERSION, NodeRecord, OutputInfo, RunManifest
from .sealing import UNSEALED, seal
from .stage_info import stages_of

if TYPE_CHECKING:
    from ..artifacts.store import Store


@dataclass(frozen=True)
class PipelineFacts:
    """What a manifest header says about the pipeline that ran."""

    name: str
    seed: int
    spec_path: str | None = None
    spec_digest: str | None = None


class NodeFacts(Protocol):
    """A plan node as the writer reads it."""

    node_id: str
    stage: Any  # .name, .version, .fingerprint, optional .units
    config: Any
    config_digest: str
    inputs: Mapping[str, Any]  # input name -> ref with .uid and .output
    seed_parts: list[int] | None  # [run seed, *spawn key] for stages that use rng


class StateFacts(Protocol):
    """A node's state after the run as the writer reads it."""

    status: str
    key: str | None
    input_digests: dict[str, str]
    outputs: dict[str, OutputEntry] | None
    record: Any
    outcome: Any
    error: str | None
    manifest_node: bytes | None


class OutcomeFacts(Protocol):
    nodes: Mapping[str, NodeFacts]
    states: Mapping[str, StateFacts]
    started: float
    finished: float
    interrupted: bool
    executor: str


_ENCODER = msgspec.json.Encoder(order="sorted", enc_hook=lambda v: _json_hook(v))


def _json_hook(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        from ..core.hashing import digest

        return {
            "__array__": True,
            "dtype": value.dtype.str,
            "shape": list(value.shape),
            "digest": digest(value),
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, complex):
        return {"real": value.real, "imag": value.imag}
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):  # pydantic
        return {
            "__model__": f"{type(value).__module__}:{type(value).__qualname__}",
            **value.model_dump(),
        }
    raise NotImplementedError(f"cannot record {type(value).__qualname__} in a manifest")


def json_scalar(value: Any) -> Any:
    """``value`` as plain JSON data (numpy scalars as numbers, arrays by digest...)."""
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    try:
        return _json_hook(value)
    except NotImplementedError:
        return value


def config_as_json(config: msgspec.Struct | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return msgspec.to_builtins(config, enc_hook=_json_hook)


def _scalar(tree: Any) -> float | int | str | bool | None:
    if isinstance(tree, list) and len(tree) == 2 and tree[0] in ("f", "i", "b", "s"):
        if tree[0] != "s" or len(tree[1]) <= 200:
            return tree[1]
    elif isinstance(tree, list) and tree and tree[0] == "g":
        scalar = np.frombuffer(tree[2], dtype=np.dtype(tree[1]))[0]
        if scalar.dtype.kind in "biuf":
            return scalar.item()
    return None


#: JSON has no NaN or infinity: metrics store them as these strings, which msgspec reads back
#: as floats (manifests are decoded with ``strict=False``)
NONFINITE = {"nan": "nan", "inf": "inf", "-inf": "-inf"}


def _number(value: Any) -> float | str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if number != number or number in (math.inf, -math.inf):
        return NONFINITE[repr(number)]
    return number


def output_metrics(outputs: dict[str, OutputEntry]) -> dict[str, float | str]:
    """Numeric scalar outputs, and numeric entries of dict outputs as ``output.key`` (NaN and
    infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"``)."""
    found: dict[str, float | str] = {}
    for name, entry in outputs.items():
        tree = entry.tree
        number = _number(_scalar(tree))
        if number is not None:
            found[name] = number
        elif isinstance(tree, list) and tree and tree[0] == "d" and len(tree[1]) <= 64:
            for key_tree, value_tree in tree[1]:
                key = _scalar(key_tree)
                number = _number(_scalar(value_tree))
                if isinstance(key, str) and number is not None:
                    found[f"{name}.{key}"] = number
    return found


def _units(units: Any, output: str) -> str | None:
    if isinstance(units, str):
        return units if output == "value" else None
    if isinstance(units, dict):
        return units.get(output)
    return None


def output_info(entry: OutputEntry, units: str | None = None) -> OutputInfo:
    value = _scalar(entry.tree)
    if isinstance(value, float) and not math.isfinite(value):
        value = None  # not JSON: the number is in the node's metrics as "nan" / "inf"
    return OutputInfo(
        digest=entry.digest,
        type=entry.type_name,
        dtype=entry.dtype,
        shape=list(entry.shape) if entry.shape is not None else None,
        nbytes=entry.nbytes,
        objects=list(entry.objects),
        value=value,
        units=units,
    )


def node_record(node: NodeFacts, state: StateFacts, uid: str | None = None) -> NodeRecord:
    outcome = state.outcome
    units = getattr(node.stage, "units", None)
    return NodeRecord(
        id=uid or node.node_id,
        stage=node.stage.name,
        stage_version=node.stage.version,
        status="miss" if state.status == "miss" else state.status,  # type: ignore[arg-type]
        key=state.key,
        fingerprint=node.stage.fingerprint,
        config=config_as_json(node.config),
        config_digest=node.config_digest,
        inputs=state.input_digests,  # the run is over: no copy needed
        input_refs={
            name: ref.uid if ref.output is None else f"{ref.uid}.{ref.output}"
            for name, ref in node.inputs.items()
        },
        outputs={k: output_info(e, _units(units, k)) for k, e in (state.outputs or {}).items()}
        if units is not None
        else {k: output_info(e) for k, e in (state.outputs or {}).items()},
        metrics=output_metrics(state.outputs or {}),
        seed=node.seed_parts,
        started=outcome.started if outcome else None,
        duration_s=(
            outcome.duration_s if outcome else (state.record.duration_s if state.record else None)
        ),
        attempts=outcome.attempts if outcome and state.status != "hit" else 0,
        error=state.error,
        traceback=outcome.traceback if outcome and state.status == "failed" else None,
    )


def status_counts(outcome: OutcomeFacts) -> dict[str, int]:
    """hit / miss / failed / skipped counts of a run or scan (cancelled and never-run nodes
    count as skipped)."""
    counts = {"hit": 0, "miss": 0, "failed": 0, "skipped": 0}
    for state in outcome.states.values():
        status = state.status
        counts[status if status in ("hit", "miss", "failed") else "skipped"] += 1
    return counts


def as_replayed_hit(record: NodeRecord, state: StateFacts) -> NodeRecord:
    """The node record this node gets in a later run that replays this one: a plain hit.

    Equal to ``node_record(node, NodeState("hit", key, inputs, outputs, action))`` (tested), at a
    fraction of the cost, so complete runs can store their replay manifest cheaply.
    """
    if record.status == "hit" and state.outcome is None:
        return record
    action = state.record
    return msgspec.structs.replace(
        record,
        status="hit",
        started=None,
        duration_s=action.duration_s if action is not None else None,
        attempts=0,
        error=None,
        traceback=None,
    )


def encode_run_nodes(outcome: OutcomeFacts) -> tuple[bytes, list[bytes]]:
    """The manifest's ``nodes`` array (JSON), and each node's record as a later run that
    replays this one shows it (for the plan record).

    Nodes whose record a plan record already had (``state.manifest_node``) are not rebuilt.
    Records are encoded one by one with the manifest's encoder, so the array is the same bytes
    that encoding the list at once would give.
    """
    encode = _ENCODER.encode
    encoded: list[bytes] = []
    replayed: list[bytes] = []
    for uid, state in outcome.states.items():
        if state.manifest_node is not None:
            encoded.append(state.manifest_node)
            replayed.append(state.manifest_node)
            continue
        record = node_record(outcome.nodes[uid], state, uid)
        data = encode(record)
        encoded.append(data)
        hit = as_replayed_hit(record, state) if state.status in ("hit", "miss") else record
        replayed.append(data if hit is record else encode(hit))
    return b"[" + b",".join(encoded) + b"]", replayed


def run_manifest_header(
    store: str,
    outcome: OutcomeFacts,
    run_id: str,
    pipeline: PipelineFacts,
    overrides: dict[str, Any],
) -> RunManifest:
    """The run's manifest without its node records (``nodes`` is empty): those are encoded one
    by one by :func:`encode_run_nodes` and spliced in by :func:`encode_manifest`."""
    counts = status_counts(outcome)
    status = "interrupted" if outcome.interrupted else ("failed" if counts["failed"] else "ok")
    return RunManifest(
        schema_version=SCHEMA_VERSION,
        run_id=run_id,
        pipeline=pipeline.name,
        seed=pipeline.seed,
        status=status,  # type: ignore[arg-type]
        store=store,
        executor=outcome.executor,
        started=outcome.started,
        finished=outcome.finished,
        duration_s=outcome.finished - outcome.started,
        environment=capture_environment(),
        nodes=[],
        spec_path=pipeline.spec_path,
        spec_digest=pipeline.spec_digest,
        overrides={k: v for k, v in overrides.items()},
        hits=counts["hit"],
        misses=counts["miss"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        stages=stages_of(outcome.nodes.values()),
    )


def encode_manifest(header: msgspec.Struct, nodes_json: bytes) -> bytes:
    """JSON of a run or scan manifest: ``header`` with the encoded node list ``nodes_json`` as
    its nodes, sealed with its checksum.

    Node records are encoded by the manifest's own encoder, so this is the same JSON that
    encoding a manifest Struct holding those records would give.
    """
    unsealed = msgspec.structs.replace(header, nodes=msgspec.Raw(nodes_json), checksum=UNSEALED)  # type: ignore[arg-type]
    return seal(_ENCODER.encode(unsealed))


def decode_manifest(data: bytes) -> RunManifest:
    return msgspec.json.decode(data, type=RunManifest, strict=False)  # "nan" metrics


class ManifestWriteError(OSError):
    """A manifest could not be written (disk full, read-only or missing store directory); the
    message names the file and the store. ``errno`` is the underlying error's."""


def write_manifest(store: Store, run_id: str, data: bytes) -> Path:
    """Write an encoded manifest atomically; returns its path."""
    path = store.manifest_path(run_id)
    try:
        store.write_bytes_atomic(path, data)
    except OSError as exc:
        raise manifest_write_error(path, exc) from exc
    return path


def manifest_write_error(path: Any, exc: OSError) -> ManifestWriteError:
    err = ManifestWriteError(
        f"cannot write the manifest {Path(str(path)).name} into {Path(str(path)).parent}: "
        f"{exc.strerror or exc}"
    )
    err.errno = exc.errno
    return err
