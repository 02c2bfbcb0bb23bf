"""JSON Schema of the manifests, generated from the msgspec Structs (the single source of truth)."""

from __future__ import annotations

from typing import Any

import msgspec

from .schema import SCHEMA_VERSION, RunManifest

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def manifest_json_schema(kind: str = "run") -> dict[str, Any]:
    """The JSON Schema of a run manifest (``kind="run"``) or a scan manifest (``"scan"``)."""
    if kind == "run":
        cls: Any = RunManifest
    elif kind == "scan":
        from .scan_manifest import ScanManifest  # written by the scan module

        cls = ScanManifest
    else:
        raise ValueError(f"unknown manifest kind {kind!r}; use 'run' or 'scan'")
    schema = msgspec.json.schema(cls)
    metrics = schema.get("$defs", {}).get("NodeRecord", {}).get("properties", {}).get("metrics")
    if metrics is not None:  # NaN and infinities are written as strings (JSON has neither)
        metrics["additionalProperties"] = {
            "anyOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}]
        }
    return {
        "$schema": SCHEMA_URI,
        "$id": f"https://physflow.dev/schemas/{kind}-manifest-v{SCHEMA_VERSION}.json",
        "title": f"physflow {kind} manifest (schema_version {SCHEMA_VERSION})",
        **schema,
    }
