"""Driving a physflow pipeline from the phys-sims-utils 0.2 harness, unchanged.

``pipeline.as_harness_target(objective="power", metrics=[...])`` returns a :class:`HarnessTarget`
whose ``run(config, seed) -> Mapping`` is what ``PhysPipelineAdapter(target, objective_key=...)``
calls. Harness config keys are ``"node.field"`` paths (or mapped onto them with ``params=``);
each evaluation is a cached physflow run, so repeating a point is all hits. The returned mapping
carries the objective, the metrics, the manifest path and the output digests; the
:meth:`HarnessTarget.adapter` variant also puts them into ``EvalResult.artifacts`` /
``provenance`` (``PhysPipelineAdapter`` keeps only objective and metrics).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from ..artifacts.store import open_store
from ..core.refs import RefError, resolve_ref
from .run import run_pipeline

if TYPE_CHECKING:
    from .graph import Pipeline
    from .run import RunResult


class HarnessError(ValueError):
    """A harness config key or objective cannot be mapped onto the pipeline."""


def _scalar(value: Any, ref: str) -> float:
    try:
        import numpy as np

        array = np.asarray(value)
        if array.size != 1:
            raise TypeError
        return float(array.reshape(()))
    except (TypeError, ValueError):
        raise HarnessError(
            f"output '{ref}' is a {type(value).__qualname__}, not a scalar; objectives and "
            "metrics must be single numbers (add a reducing stage)"
        ) from None


def _lookup(result: RunResult, ref: str) -> Any:
    """``node``, ``node.output`` or ``node.output.key`` (an entry of a dict output)."""
    parts = ref.split(".", 2)
    if len(parts) < 3:
        return result[ref]
    value = result[f"{parts[0]}.{parts[1]}"]
    try:
        return value[parts[2]]
    except (KeyError, TypeError, IndexError):
        raise HarnessError(
            f"'{ref}': output '{parts[0]}.{parts[1]}' has no entry '{parts[2]}'"
        ) from None


class HarnessTarget:
    """A pipeline as a phys-sims-utils evaluation target (``run(config, seed) -> Mapping``).

    ``objective`` and ``metrics`` name scalar outputs: ``"node"``, ``"node.output"`` or
    ``"node.output.key"`` (an entry of a dict output, e.g. a phys-pipeline stage's metrics).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        objective: str,
        metrics: Iterable[str] = (),
        *,
        store: Any = None,
        executor: Any = "serial",
        workers: int | None = None,
        params: Mapping[str, str] | None = None,
        seed: Literal["harness", "pipeline"] = "harness",
    ) -> None:

        self.pipeline = pipeline
        self.objective = objective
        self.metrics = list(metrics)
        self.store = open_store(store)
        self.executor = executor
        self.workers = workers
        self.params = dict(params or {})
        if seed not in ("harness", "pipeline"):
            raise HarnessError("seed must be 'harness' (use the harness's seed) or 'pipeline'")
        self.seed_mode = seed
        self.last_result: RunResult | None = None
        for ref in [objective, *self.metrics]:
            self._check_ref(ref)

    def _check_ref(self, ref: str) -> None:
        outputs_of = {n: node.stage.output_names for n, node in self.pipeline.nodes.items()}
        try:
            resolve_ref(ref, outputs_of, allow_key=True)
        except RefError as exc:
            raise HarnessError(
                f"objective/metric {exc} (pipeline '{self.pipeline.name}')"
            ) from None

    def overrides(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Harness config -> ``{"node.field": value}``; unknown keys are an error, not ignored."""
        values: dict[str, Any] = {}
        for key, value in config.items():
            path = self.params.get(key, key)
            if "." not in path:
                raise HarnessError(
                    f"harness config key '{key}' does not name a parameter: use 'node.field' "
                    "keys, or map it with as_harness_target(params={'" + key + "': 'node.field'})"
                )
            values[path] = value
        return values

    def run(self, config: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """Run (mostly from cache) at ``config``; return objective, metrics and provenance."""
        seed_value = int(seed) if self.seed_mode == "harness" else None
        overrides = self.overrides(config)
        pipeline = self.pipeline.with_values(overrides, seed=seed_value)
        result = run_pipeline(
            pipeline,
            store=self.store,
            executor=self.executor,
            workers=self.workers,
            overrides=overrides,
        )
        self.last_result = result
        result.raise_on_failure()
        out: dict[str, Any] = {}
        objective = _scalar(_lookup(result, self.objective), self.objective)
        out[self.objective] = objective
        out["objective"] = objective
        for ref in self.metrics:
            out[ref] = _scalar(_lookup(result, ref), ref)
        out["manifest_path"] = result.manifest_path
        out["run_id"] = result.manifest.run_id
        out["output_digests"] = {
            f"{n.id}.{k}": o.digest for n in result.manifest.nodes for k, o in n.outputs.items()
        }
        out["seed"] = pipeline.seed
        out["hits"] = len(result.hits)
        out["misses"] = len(result.misses)
        return out

    # the harness calls either name
    evaluate = run

    def adapter(self, objective_key: str | None = None) -> PhysflowAdapter:
        """A phys-sims-utils Adapter that also records manifest path and digests."""
        return PhysflowAdapter(self, objective_key or self.objective)


class PhysflowAdapter:
    """``Adapter`` protocol (``run(config, seed) -> EvalResult``) with physflow provenance."""

    def __init__(self, target: HarnessTarget, objective_key: str) -> None:
        self.target = target
        self.objective_key = objective_key

    def run(self, config: dict[str, Any], seed: int) -> Any:
        from phys_sims_utils.shared import EvalResult

        raw = self.target.run(config, seed)
        theta = {
            k: float(v)
            for k, v in config.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return EvalResult(
            theta=theta,
            objective=float(raw[self.objective_key]),
            metrics={k: float(raw[k]) for k in self.target.metrics},
            artifacts={
                "manifest_path": raw["manifest_path"],
                "output_digests": raw["output_digests"],
            },
            seed=int(raw["seed"]),  # the seed the run used (with seed="pipeline": the pipeline's)
            provenance={
                "physflow_run_id": str(raw["run_id"]),
                "physflow_hits": str(raw["hits"]),
                "physflow_misses": str(raw["misses"]),
                "physflow_spec_digest": str(self.target.pipeline.spec_digest or ""),
                # phys-sims-utils 0.2's run_sweep rebuilds EvalResult with its own
                # per-evaluation seed; the seed the run used survives here
                "physflow_seed": str(raw["seed"]),
            },
        )
