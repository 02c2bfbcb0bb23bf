"""``physflow show``: a run's or a scan's manifest as a table."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EXIT_OK, UsageError, _store_path


def _describe_output(info: Any, metric: Any = None) -> str:
    if info.value is None and isinstance(metric, float):  # NaN / inf live in the metrics
        return f"{metric:.6g}" + (f" {info.units}" if info.units else "")
    if info.value is not None:
        text = f"{info.value:.6g}" if isinstance(info.value, float) else repr(info.value)
    elif info.shape is not None:
        text = f"{info.dtype}{list(info.shape)}"
    else:
        text = info.type.rpartition(".")[2] or "?"
    return text + (f" {info.units}" if info.units else "")


def manifest_rows(manifest: Any) -> list[list[str]]:
    rows = []
    for node in manifest.nodes:
        outs = ", ".join(
            (f"{k}=" if k != "value" else "") + _describe_output(v, node.metrics.get(k))
            for k, v in node.outputs.items()
        )
        if node.status == "failed" and node.error:
            outs = node.error if len(node.error) < 80 else node.error[:77] + "..."
        duration = f"{node.duration_s:.3f}" if node.duration_s is not None else "-"
        rows.append([node.id, node.stage.rpartition(":")[2], node.status, duration, outs])
    return rows


def cmd_show(args: argparse.Namespace) -> int:
    from ..manifests.reader import ManifestError, find_manifest, latest_manifest, read_manifest

    if args.manifest == "latest":
        path = latest_manifest(args.store)
        if path is None:
            raise UsageError(f"no manifests in {_store_path(args.store)}")
    else:
        path = find_manifest(args.manifest, args.store)
    if args.json:
        from ..manifests.sealing import DamagedManifestError, check_seal

        data = path.read_bytes()
        try:
            check_seal(data)
        except DamagedManifestError as exc:
            raise ManifestError(f"{path}: {exc}") from None
        sys.stdout.write(data.decode())
        return EXIT_OK
    try:
        m = read_manifest(path)
    except ManifestError:
        import json

        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
        if isinstance(data, dict) and (data.get("kind") == "scan" or "scan_id" in data):
            return _show_scan(path)
        raise
    header = ["node", "stage", "status", "time s", "outputs"]
    rows = manifest_rows(m)
    title = (
        f"run {m.run_id}  {m.pipeline}  seed={m.seed}  {m.status}  "
        f"{m.hits} hits / {m.misses} misses / {m.failed} failed  {m.duration_s:.3f} s"
    )
    from .progress import print_table

    print_table(title, header, rows)
    print(f"store: {m.store}")
    return EXIT_OK


def _scan_value(records: dict[str, Any], ref: str) -> str:
    node_id, _, output = ref.partition(".")
    record = records.get(node_id)
    if record is None or not record.outputs:
        return "-"
    info = record.outputs.get(output or "value")
    return _describe_output(info) if info is not None else "-"


def _show_scan(path: Any) -> int:
    """One row per scan point: axis values, status and the collected scalars."""
    from ..manifests.scan_manifest import load_scan_manifest

    m = load_scan_manifest(path)
    axes = list(m.points[0].values) if m.points else []
    header = ["point", *axes, "status", *m.collect]
    rows = []
    for i, point in enumerate(m.points):
        records = m.point_nodes(i)
        values = [
            f"{point.values[a]:.6g}" if isinstance(point.values[a], float) else str(point.values[a])
            for a in axes
        ]
        collected = [_scan_value(records, ref) for ref in m.collect]
        status = point.status if point.error is None else f"{point.status}: {point.error}"
        rows.append([str(i), *values, status, *collected])
    title = (
        f"scan {m.scan_id}  {m.pipeline}  {m.mode} {' x '.join(m.dims)}  {m.status}  "
        f"{m.hits} hits / {m.misses} misses / {m.points_failed} failed points"
        + (f" / {m.points_cancelled} cancelled" if m.points_cancelled else "")
    )
    from .progress import print_table

    print_table(title, header, rows, status_column=len(axes) + 1)
    print(f"store: {m.store}")
    return EXIT_OK
