"""A pipeline compiled for many samples: only the nodes the outputs need, called in-process.

Each sample runs its nodes in topological order as the runner would (same configs, same
per-node ``rng`` streams, inputs read-only), but without cache keys, action records or a
manifest per sample: the dataset caches whole shards instead (see :mod:`physflow.ml.shards`).
Intermediate node outputs live only while the sample runs. Pipelines with stages that need the
store themselves (``ctx`` or lazy inputs) fall back to one real ``Pipeline.run`` per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from . import _engine, sampling
from .spec import DatasetSpec, resolve_ref, set_field


class SampleError(RuntimeError):
    """A sample failed; the message names the sample, its parameters and the node."""


@dataclass
class _Node:
    id: str
    stage: Any
    config: Any
    inputs: list[tuple[str, str, str | None, bool]]  # name, upstream, output, upstream single
    call: Any


def _raise(message: str, *_: Any, **__: Any) -> Exception:
    return SampleError(message)


class Program:
    """Runs sample ``i`` of a dataset definition (pipeline + spec + seed)."""

    def __init__(self, pipeline: Any, spec: DatasetSpec, seed: int) -> None:
        self.pipeline = pipeline
        self.seed = seed
        self.vary = sampling.ordered(spec.vary)
        self.fields = {
            name: resolve_ref(f.ref, pipeline, _raise, ()) for name, f in spec.outputs.items()
        }
        self.refs = {name: f.ref for name, f in spec.outputs.items()}
        needed = self._needed({node for node, _, _ in self.fields.values()})
        order = [n for n in pipeline.validate() if n in needed]
        self.node_ids = order
        self.in_process = not any(
            pipeline.nodes[n].stage.uses_ctx or pipeline.nodes[n].stage.lazy_inputs for n in order
        )
        self.nodes = [self._node(n) for n in order]
        self.varied: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for path, _dist in self.vary:
            node_id, _, rest = path.partition(".")
            self.varied.setdefault(node_id, []).append((path, tuple(rest.split("."))))
        self.store: Any = None  # set by the caller for the fallback path

    def _needed(self, roots: set[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            stack.extend(ref.node for ref in self.pipeline.nodes[node_id].inputs.values())
        return seen

    def _node(self, node_id: str) -> _Node:
        node = self.pipeline.nodes[node_id]
        inputs = [
            (
                name,
                ref.node,
                ref.output,
                self.pipeline.nodes[ref.node].stage.outputs is None,
            )
            for name, ref in node.inputs.items()
        ]
        call = _engine.stage_caller(node.stage, node_id) if self.in_process else None
        return _Node(node_id, node.stage, node.config, inputs, call)

    # -- one sample --------------------------------------------------------------------------------

    def draw(self, index: int) -> tuple[int, dict[str, Any], dict[str, Any]]:
        return sampling.draw(self.seed, index, self.vary)

    def sample_pipeline(self, index: int) -> Any:
        """The pipeline whose ordinary run reproduces sample ``index`` bit for bit."""
        run_seed, values, _ = self.draw(index)
        return self.pipeline.with_values(values, seed=run_seed)

    def run(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(fields as numpy arrays, stored parameter values) of sample ``index``."""
        run_seed, values, stored = self.draw(index)
        if not self.in_process:
            return self._run_pipeline(index, values, run_seed), stored
        configs = self._configs(index, values)
        env: dict[str, dict[str, Any]] = {}
        for node in self.nodes:
            kwargs = {}
            for name, up, output, single in node.inputs:
                outs = env[up]
                if output is not None:
                    kwargs[name] = outs[output]
                else:
                    kwargs[name] = outs["value"] if single else dict(outs)
            try:
                env[node.id] = node.call(configs.get(node.id, node.config), kwargs, run_seed)
            except Exception as exc:
                raise SampleError(
                    f"sample {index} ({self._describe(values)}): node '{node.id}' "
                    f"({node.stage.name}) failed: {type(exc).__name__}: {exc}"
                ) from exc
        return {
            name: self._field(name, env[node][output], keys)
            for name, (node, output, keys) in self.fields.items()
        }, stored

    def _configs(self, index: int, values: dict[str, Any]) -> dict[str, Any]:
        configs: dict[str, Any] = {}
        for node_id, paths in self.varied.items():
            config = self.pipeline.nodes[node_id].config
            for path, fields in paths:
                try:
                    config = set_field(config, fields, values[path])
                except (msgspec.ValidationError, TypeError, ValueError) as exc:
                    raise SampleError(
                        f"sample {index}: vary '{path}' = {values[path]!r} is not valid: {exc}"
                    ) from None
            configs[node_id] = config
        return configs

    def _run_pipeline(self, index: int, values: dict[str, Any], run_seed: int) -> dict:
        pipeline = self.pipeline.with_values(values, seed=run_seed)
        result = pipeline.run(store=self.store, write_manifest=False)
        if not result.ok:
            raise SampleError(f"sample {index} ({self._describe(values)}) failed: {result.errors}")
        out = {}
        for name, (node, output, keys) in self.fields.items():
            single = self.pipeline.nodes[node].stage.outputs is None
            out[name] = self._field(name, result[node if single else f"{node}.{output}"], keys)
        return out

    def _field(self, name: str, value: Any, keys: tuple[str, ...]) -> np.ndarray:
        for key in keys:
            try:
                value = value[key] if isinstance(value, dict) else getattr(value, key)
            except (KeyError, AttributeError, TypeError):
                raise SampleError(
                    f"output field '{name}' = '{self.refs[name]}': the value has no key "
                    f"'{key}' (it is a {type(value).__qualname__})"
                ) from None
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise SampleError(
                f"output field '{name}' = '{self.refs[name]}' is a {type(value).__qualname__}, "
                "not an array or number: name an array output (or a key of a dict output)"
            )
        return array

    @staticmethod
    def _describe(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "no varied parameters"
