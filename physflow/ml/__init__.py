"""ML training data from pipelines: sharded, resumable, cached datasets and deterministic loaders.

```python
ds = pf.ml.generate(p, samples=10_000, vary={"noisy.sigma": {"uniform": [0.0, 1.0]}},
                    outputs={"x": "noisy", "y": "power"}, shard_size=256,
                    split={"train": 0.8, "test": 0.2})
ds = pf.ml.open_dataset("demo", store=".physflow")
loader = torch.utils.data.DataLoader(ds.split("train").torch(shuffle=True, seed=0), batch_size=64)
```

See docs/ml.md. torch, xarray and dask are imported only by the functions that use them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "generate": "physflow.ml.generation",
    "GenerationError": "physflow.ml.generation",
    "load_dataset_spec": "physflow.ml.spec",
    "Dataset": "physflow.ml.dataset",
    "open_dataset": "physflow.ml.dataset",
    "list_datasets": "physflow.ml.dataset",
    "DatasetSpec": "physflow.ml.spec",
    "DatasetCard": "physflow.ml.card",
    "CardError": "physflow.ml.card",
    "SampleError": "physflow.ml.program",
    "EncodingError": "physflow.ml.encoding",
    "Ragged": "physflow.ml.encoding",
    "TorchDataset": "physflow.ml.torch_data",
    "collate": "physflow.ml.torch_data",
}


def card_json_schema() -> dict[str, Any]:
    """The JSON Schema of a dataset card (``physflow dataset schema`` prints it)."""
    from .card import json_schema

    return json_schema()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'physflow.ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["card_json_schema", *_LAZY]
