"""The run manifest: a versioned JSON record of what ran, what was reused, where outputs live."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SCHEMA_VERSION = 1

NodeStatus = Literal["hit", "miss", "failed", "skipped", "cancelled"]
RunStatus = Literal["ok", "failed", "interrupted"]


class OutputInfo(msgspec.Struct, omit_defaults=True):
    """One output of a node: enough to find it (digest, store tree) and to describe it.

    ``units`` is filled when the stage declares them (``stage.units = {"value": "W"}``).
    """

    digest: str
    type: str = ""
    dtype: str | None = None
    shape: list[int] | None = None
    nbytes: int = 0
    objects: list[str] = []
    #: The value itself when it is a plain JSON scalar (metrics read without the store).
    value: float | int | str | bool | None = None
    units: str | None = None


class NodeRecord(msgspec.Struct, omit_defaults=True):
    id: str
    stage: str
    stage_version: str
    status: NodeStatus
    key: str | None = None
    fingerprint: str | None = None
    config: dict[str, Any] | None = None
    config_digest: str | None = None
    #: input name -> content digest of the value it received
    inputs: dict[str, str] = {}
    #: input name -> where it came from ("node" or "node.output"); dtype/shape/units of that
    #: value are in the upstream node's ``outputs``
    input_refs: dict[str, str] = {}
    outputs: dict[str, OutputInfo] = {}
    #: Scalar numeric outputs (and numeric entries of dict outputs as "output.key"), so
    #: harnesses and tables read metrics without opening the store.
    metrics: dict[str, float] = {}
    seed: list[int] | None = None
    started: float | None = None
    duration_s: float | None = None
    attempts: int = 0
    error: str | None = None
    traceback: str | None = None


class StageInfo(msgspec.Struct, omit_defaults=True):
    """The parts of a stage fingerprint, so a changed fingerprint can be explained (version,
    source, which dependency). Recorded once per stage in ``RunManifest.stages``."""

    name: str
    version: str
    #: digest of the stage function's normalised source (comments/formatting do not count)
    source: str
    #: dependency label (``module:qualname``, ``stage:name`` or ``value<i>``) -> digest
    deps: dict[str, str] = {}
    outputs: list[str] | None = None
    #: the source file changed after the stage was imported: ``source`` is the file's text now
    stale: bool = False


class Environment(msgspec.Struct, omit_defaults=True):
    python: str
    platform: str
    host: str
    physflow: str
    packages: dict[str, str] = {}
    git_commit: str | None = None
    git_dirty: bool | None = None
    cwd: str | None = None
    argv: list[str] = []


class RunManifest(msgspec.Struct, omit_defaults=True):
    schema_version: int
    run_id: str
    pipeline: str
    seed: int
    status: RunStatus
    store: str
    executor: str
    started: float
    finished: float
    duration_s: float
    environment: Environment
    nodes: list[NodeRecord]
    kind: Literal["run"] = "run"
    spec_path: str | None = None
    spec_digest: str | None = None
    overrides: dict[str, Any] = {}
    hits: int = 0
    misses: int = 0
    failed: int = 0
    skipped: int = 0
    #: stage fingerprint -> its parts (for ``physflow explain``)
    stages: dict[str, StageInfo] = {}
    #: blake3 of the file with this field's digest set to 64 zeros (see manifests.sealing):
    #: a damaged or edited manifest is refused instead of shown
    checksum: str | None = None

    def node(self, node_id: str) -> NodeRecord:
        for record in self.nodes:
            if record.id == node_id:
                return record
        raise KeyError(f"manifest of run {self.run_id} has no node '{node_id}'")
