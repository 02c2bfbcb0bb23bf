"""physflow: physics simulations as DAGs of cached, typed, reproducible stages.

The names below are the public API (docs/architecture.md lists them). Submodules with heavy
dependencies are imported only when first used, so ``import physflow`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Every name is imported on first use (PEP 562), so that ``physflow --help`` and other entry
# points under ``physflow.`` do not pay for numpy and the engine until they need them.
_LAZY = {
    "digest": "physflow.core.hashing",
    "Ref": "physflow.core.refs",
    "Config": "physflow.pipeline.config",
    "Pipeline": "physflow.pipeline.graph",
    "PipelineError": "physflow.pipeline.graph",
    "Stage": "physflow.pipeline.stage",
    "StageDefinitionError": "physflow.pipeline.stage",
    "stage": "physflow.pipeline.stage",
    "Store": "physflow.artifacts.store",
    "StageContext": "physflow.artifacts.context",
    "RunResult": "physflow.pipeline.run",
    "RunFailedError": "physflow.pipeline.run",
    "NodeEvent": "physflow.pipeline.events",
    "DaskExecutor": "physflow.executors.dask",
    "load_spec": "physflow.pipeline.spec",
    "register_value_type": "physflow.core.value_types",
    "SpecError": "physflow.pipeline.spec",
    "GLOBAL_RNG_LOCK": "physflow.pipeline.rng",
    "load_spec_with_scan": "physflow.pipeline.spec",
    "ScanSpec": "physflow.pipeline.spec",
    "register_stage": "physflow.pipeline.registry",
    "load_manifest": "physflow.manifests.reader",
    "RunManifest": "physflow.manifests.schema",
    "from_phys_pipeline": "physflow.interop.phys_pipeline",
    "CorruptObjectError": "physflow.artifacts.errors",
    "MissingObjectError": "physflow.artifacts.errors",
    "StoreError": "physflow.artifacts.errors",
    "StoreLocationError": "physflow.artifacts.errors",
    "PickleNotAllowedError": "physflow.artifacts.errors",
}


def __getattr__(name: str) -> Any:
    if name == "ml":  # the ML data package (physflow/ml): imported on first use
        return importlib.import_module("physflow.ml")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'physflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "ml"])


__all__ = [*_LAZY]
