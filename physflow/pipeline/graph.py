"""``Pipeline``: nodes (stage + config + wired inputs), validated before anything runs."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ..core.hashing import digest
from ..core.keys import key_prefix
from .stage import Stage

if TYPE_CHECKING:
    from .runner import RunResult

_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class PipelineError(ValueError):
    """A pipeline is malformed; the message names the node and says how to fix it."""


def suggest(name: str, candidates: Iterable[str]) -> str:
    """' Did you mean ...?' for the closest valid names, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


@dataclass(frozen=True)
class Ref:
    """A reference to a node's output: ``node`` (its only output, or all) or ``node.out``."""

    node: str
    output: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        node, _, output = text.partition(".")
        return cls(node, output or None)

    def __str__(self) -> str:
        return self.node if self.output is None else f"{self.node}.{self.output}"


@dataclass
class Node:
    id: str
    stage: Stage
    config: msgspec.Struct | None
    inputs: dict[str, Ref] = field(default_factory=dict)
    _digest_of: tuple[Any, str] | None = field(default=None, repr=False, compare=False)

    _prefix_of: tuple[Any, bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def config_digest(self) -> str:
        """Digest of the current config, computed once per config object (re-runs are cheap)."""
        cached = self._digest_of
        if cached is None or cached[0] is not self.config:
            cached = self._digest_of = (self.config, digest(self.config))
        return cached[1]

    @property
    def key_prefix(self) -> bytes:
        """The input-independent part of this node's cache key, cached like the digest."""
        cached = self._prefix_of
        if cached is None or cached[0] is not self.config:
            cached = self._prefix_of = (
                self.config,
                key_prefix(self.stage.fingerprint, self.config_digest),
            )
        return cached[1]


def coerce_config(node_id: str, stage: Stage, config: Any) -> msgspec.Struct | None:
    """Check (or build, from a mapping) the config of a node against the stage's config class."""
    expected = stage.config_type
    if expected is None:
        if config is not None:
            raise PipelineError(
                f"node '{node_id}': stage {stage.name} takes no config, but one was given. "
                "Remove the config, or add a Config parameter to the stage."
            )
        return None
    if config is None:
        default = getattr(stage, "default_config", None)  # e.g. wrapped phys-pipeline stages
        if default is not None:
            return default
        try:
            return expected()
        except TypeError:
            required = [f.name for f in msgspec.structs.fields(expected) if f.required]
            raise PipelineError(
                f"node '{node_id}': stage {stage.name} needs a config of type "
                f"{expected.__qualname__} (required fields: {', '.join(required) or '?'}). "
                f"Pass {expected.__qualname__}(...) to Pipeline.add."
            ) from None
    if isinstance(config, Mapping):
        try:
            return msgspec.convert(dict(config), expected, strict=False)
        except msgspec.ValidationError as exc:
            raise PipelineError(f"node '{node_id}': invalid config: {exc}") from None
    if type(config) is not expected:
        raise PipelineError(
            f"node '{node_id}': config is a {type(config).__qualname__}, but stage "
            f"{stage.name} expects {expected.__qualname__}."
        )
    return config


class Pipeline:
    """A DAG of stage nodes. Build with :meth:`add`, run with :meth:`run` or :meth:`scan`."""

    def __init__(self, name: str, seed: int = 0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise PipelineError(f"pipeline '{name}': seed must be an int >= 0, got {seed!r}")
        self.name = name
        self.seed = seed
        self.nodes: dict[str, Node] = {}
        self.spec_path: str | None = None
        self.spec_digest: str | None = None
        self._order: list[str] | None = None

    def add(self, node_id: str, stage: Stage, config: Any = None, **inputs: str | Ref) -> Pipeline:
        """Add a node; inputs name upstream outputs as ``"node"`` or ``"node.output"``."""
        if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
            raise PipelineError(
                f"node id {node_id!r} is not valid: use letters, digits, '_' or '-', starting "
                "with a letter (dots separate node and output in references)."
            )
        if node_id in self.nodes:
            raise PipelineError(
                f"node '{node_id}' is already in pipeline '{self.name}'; ids must be unique."
            )
        if not isinstance(stage, Stage):
            raise PipelineError(
                f"node '{node_id}': {stage!r} is not a physflow stage; decorate the function "
                "with @physflow.stage(version=...)."
            )
        config = coerce_config(node_id, stage, config)
        known = stage.input_names
        for name in inputs:
            if name not in known:
                raise PipelineError(
                    f"node '{node_id}': stage {stage.name} has no input '{name}'."
                    f"{suggest(name, known)} Its inputs are: {', '.join(known) or '(none)'}."
                )
        for spec in stage.inputs:
            if spec.required and spec.name not in inputs:
                raise PipelineError(
                    f"node '{node_id}': input '{spec.name}' of stage {stage.name} is not "
                    f"connected. Pass {spec.name}='<node>' or '<node>.<output>'."
                )
        refs: dict[str, Ref] = {}
        for name, target in inputs.items():
            if isinstance(target, Ref):
                refs[name] = target
            elif isinstance(target, str) and target:
                refs[name] = Ref.parse(target)
            else:
                raise PipelineError(
                    f"node '{node_id}': input '{name}' must name an upstream node as "
                    f"'node' or 'node.output', got {target!r}."
                )
        self.nodes[node_id] = Node(node_id, stage, config, refs)
        self._order = None
        return self

    # -- validation ---------------------------------------------------------------------------

    def validate(self) -> list[str]:
        """Check every reference and the absence of cycles; return a topological order."""
        if self._order is not None:
            return self._order
        for node in self.nodes.values():
            for name, ref in node.inputs.items():
                upstream = self.nodes.get(ref.node)
                if upstream is None:
                    raise PipelineError(
                        f"node '{node.id}': input '{name}' refers to unknown node '{ref.node}'."
                        f"{suggest(ref.node, self.nodes)}"
                    )
                if ref.output is not None and ref.output not in upstream.stage.output_names:
                    declared = upstream.stage.outputs
                    hint = (
                        f"Its outputs are: {', '.join(declared)}."
                        if declared
                        else "It has a single output; refer to it as "
                        f"'{ref.node}' (declare outputs=[...] on the stage for named outputs)."
                    )
                    raise PipelineError(
                        f"node '{node.id}': input '{name}' refers to '{ref}', but stage "
                        f"{upstream.stage.name} of node '{ref.node}' has no output "
                        f"'{ref.output}'.{suggest(ref.output, upstream.stage.output_names)} {hint}"
                    )
        self._order = self._toposort()
        return self._order

    def _toposort(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in self.nodes:
            if state.get(root) == 2:
                continue
            stack: list[tuple[str, Any]] = [(root, iter(self.nodes[root].inputs.values()))]
            state[root] = 1
            path = [root]
            while stack:
                node_id, deps = stack[-1]
                for ref in deps:
                    mark = state.get(ref.node)
                    if mark == 1:
                        cycle = [*path[path.index(ref.node) :], ref.node]
                        raise PipelineError(
                            f"pipeline '{self.name}' has a cycle: {' -> '.join(cycle)}. "
                            "Remove one of these connections."
                        )
                    if mark is None:
                        state[ref.node] = 1
                        path.append(ref.node)
                        stack.append((ref.node, iter(self.nodes[ref.node].inputs.values())))
                        break
                else:
                    stack.pop()
                    path.pop()
                    state[node_id] = 2
                    order.append(node_id)
        return order

    # -- derived pipelines ----------------------------------------------------------------------

    def copy(self) -> Pipeline:
        clone = Pipeline(self.name, self.seed)
        clone.nodes = {
            k: Node(n.id, n.stage, n.config, dict(n.inputs)) for k, n in self.nodes.items()
        }
        clone.spec_path, clone.spec_digest = self.spec_path, self.spec_digest
        clone._order = self._order
        return clone

    def with_values(self, values: Mapping[str, Any], seed: int | None = None) -> Pipeline:
        """A copy with ``{"node.field": value}`` applied to configs (validated by their class)."""
        from .overrides import apply_overrides

        clone = self.copy()
        if seed is not None:
            clone.seed = seed
        apply_overrides(clone, values)
        return clone

    # -- running ----------------------------------------------------------------------------------

    def run(self, store: Any = None, executor: Any = "serial", **options: Any) -> RunResult:
        """Run every node that is not already cached; see :func:`physflow.pipeline.runner.run`."""
        from .runner import run_pipeline

        return run_pipeline(self, store=store, executor=executor, **options)

    def scan(self, axes: Any = None, collect: Iterable[str] = (), **options: Any) -> Any:
        """Run the pipeline over a grid of parameters; returns an ``xarray.Dataset``."""
        from .scan import scan

        return scan(self, axes, collect=collect, **options)

    def as_harness_target(self, objective: str, metrics: Iterable[str] = (), **options: Any) -> Any:
        """A phys-sims-utils evaluation target; see :mod:`physflow.manifests.harness`."""
        from ..manifests.harness import HarnessTarget

        return HarnessTarget(self, objective, metrics, **options)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {len(self.nodes)} nodes, seed={self.seed}>"
