"""``Pipeline``: nodes (stage + config + wired inputs), validated before anything runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ..core.graphs import CycleError, toposort
from ..core.keys import key_prefix
from ..core.names import is_node_id
from ..core.refs import Ref, RefError, resolve_ref
from ..core.suggest import did_you_mean
from .config_digests import config_digest as digest_config
from .errors import PipelineError
from .stage import Stage

if TYPE_CHECKING:
    from .harness import HarnessTarget
    from .run import RunResult


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
            cached = self._digest_of = (self.config, digest_config(self.config))
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
        if not is_node_id(node_id):
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
                    f"{did_you_mean(name, known)} Its inputs are: {', '.join(known) or '(none)'}."
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
        outputs_of = {n: node.stage.output_names for n, node in self.nodes.items()}
        for node in self.nodes.values():
            for name, ref in node.inputs.items():
                outputs = outputs_of.get(ref.node)
                if (
                    ref.key is None
                    and outputs is not None
                    and (ref.output is None or ref.output in outputs)
                ):
                    continue  # valid (the common case): no need to re-parse it
                try:
                    resolve_ref(str(ref), outputs_of)
                except RefError as exc:
                    raise PipelineError(
                        f"node '{node.id}': input '{name}' refers to {exc}"
                    ) from None
        try:
            self._order = toposort(
                {n: [r.node for r in node.inputs.values()] for n, node in self.nodes.items()}
            )
        except CycleError as exc:
            raise PipelineError(
                f"pipeline '{self.name}' has a cycle: {exc}. Remove one of these connections."
            ) from None
        return self._order

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
        """Run every node that is not already cached (see :mod:`physflow.pipeline.run`)."""
        from .run import run_pipeline

        return run_pipeline(self, store=store, executor=executor, **options)

    def scan(self, axes: Any = None, collect: Iterable[str] = (), **options: Any) -> Any:
        """Run the pipeline over a grid of parameters; returns an ``xarray.Dataset`` (see
        :func:`physflow.scans.run.scan`)."""
        import importlib

        # scans sit above the engine: reached by name, so the engine never imports them
        return importlib.import_module("physflow.scans.run").scan(
            self, axes, collect=collect, **options
        )

    def as_harness_target(
        self, objective: str, metrics: Iterable[str] = (), **options: Any
    ) -> HarnessTarget:
        """A phys-sims-utils evaluation target; see :mod:`physflow.pipeline.harness`."""
        from .harness import HarnessTarget

        return HarnessTarget(self, objective, metrics, **options)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {len(self.nodes)} nodes, seed={self.seed}>"
