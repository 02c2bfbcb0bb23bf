"""Plan nodes: the runner's view of a pipeline (one per node, or per node and scan point)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import blake3
import msgspec

from ..core.framing import frame_texts, merkle
from ..core.keys import key_prefix
from .config_digests import config_digest as remembered_config_digest
from .rng import seed_token
from .stage import Stage

if TYPE_CHECKING:
    from .graph import Pipeline


class InputRef(NamedTuple):
    """Where a plan node's input comes from (a tuple: made once per edge on every plan)."""

    uid: str
    output: str | None


@dataclass(slots=True)
class PlanNode:
    uid: str  # unique within one run
    node_id: str  # the pipeline's node id: names the rng stream and the node in reports
    stage: Stage
    config: msgspec.Struct | None
    config_digest: str
    inputs: dict[str, InputRef]
    seed: int
    #: The input-independent part of the cache key (computed here unless the caller has it).
    key_prefix: bytes = b""
    #: What identifies the node's random stream; None for stages without ``rng``.
    seed_token: str | None = field(default=None, init=False)
    #: [run seed, *spawn key] of that stream (as manifests record it); None without ``rng``.
    seed_parts: list[int] | None = field(default=None, init=False)
    #: This node's share of the plan digest (set by :func:`plan_digest`).
    token: bytes = field(default=b"", init=False)

    def __post_init__(self) -> None:
        # plain attributes, not properties: they are read once per node on every cached run
        if not self.key_prefix:
            self.key_prefix = key_prefix(self.stage.fingerprint, self.config_digest)
        if self.stage.uses_rng:
            seed, key = seed_token(self.seed, self.node_id)
            self.seed_token = f"{seed}:{key[0]}:{key[1]}"
            self.seed_parts = [seed, *key]


def config_digest(
    config: msgspec.Struct | None, cache: dict[int, tuple[Any, str]] | None = None
) -> str:
    """Digest of a config, memoised by identity within one planning pass."""
    if cache is not None:
        hit = cache.get(id(config))
        if hit is not None and hit[0] is config:
            return hit[1]
    d = remembered_config_digest(config)
    if cache is not None:
        cache[id(config)] = (config, d)
    return d


def plan_pipeline(
    pipeline: Pipeline,
    prefix: str = "",
    seed: int | None = None,
) -> list[PlanNode]:
    """Plan nodes in topological order; ``prefix`` namespaces uids (used by scans)."""
    order = pipeline.validate()
    run_seed = pipeline.seed if seed is None else seed
    nodes = []
    for node_id in order:
        node = pipeline.nodes[node_id]
        nodes.append(
            PlanNode(
                uid=prefix + node_id,
                node_id=node_id,
                stage=node.stage,
                config=node.config,
                config_digest=node.config_digest,
                inputs={k: InputRef(prefix + r.node, r.output) for k, r in node.inputs.items()},
                seed=run_seed,
                key_prefix=node.key_prefix,
            )
        )
    return nodes


PLAN_KIND = "physflow.plan.v3"


def _stage_token(stage: Stage) -> bytes:
    units = repr(getattr(stage, "units", None))
    return frame_texts(stage.name, stage.version, repr(stage.outputs), units)


def plan_digest(nodes: list[PlanNode]) -> str:
    """Digest of everything that decides a plan's keys and its manifest's node records.

    Per node, in plan order: uid, node id, stage name/version/outputs/units, the key prefix
    (fingerprint + config digest), the seed token, and the wiring of its inputs. Two plans with
    the same digest have the same keys for the same store contents, so a plan record (see
    :mod:`physflow.artifacts.action_cache`) of one replays the other. Each node's share is also
    left on it as ``node.token``: a node with the same token and key as in an earlier run gets
    the same manifest record. Every part is framed by :func:`physflow.core.framing.frame`.
    """
    stage_tokens: dict[int, bytes] = {}
    tokens: list[bytes] = []
    append = tokens.append
    for node in nodes:
        stage = node.stage
        stage_token = stage_tokens.get(id(stage))
        if stage_token is None:
            stage_token = stage_tokens[id(stage)] = _stage_token(stage)
        # frame() inlined: this loop runs once per node on every run, cached or not
        uid, node_id = node.uid.encode(), node.node_id.encode()
        prefix, seed = node.key_prefix, (node.seed_token or "").encode()
        inputs = node.inputs
        parts = [
            len(uid).to_bytes(8, "little"),
            uid,
            len(node_id).to_bytes(8, "little"),
            node_id,
            stage_token,
            len(prefix).to_bytes(8, "little"),
            prefix,
            len(seed).to_bytes(8, "little"),
            seed,
            len(inputs).to_bytes(8, "little"),
        ]
        for name, ref in sorted(inputs.items()) if len(inputs) > 1 else inputs.items():
            out = "-" if ref.output is None else ref.output  # output names are identifiers
            parts.append(frame_texts(name, ref.uid, out))
        node.token = token = blake3.blake3(b"".join(parts)).digest()
        append(token)
    return merkle(PLAN_KIND, *tokens)
