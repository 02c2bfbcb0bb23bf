"""``physflow explain [RUN] NODE``: why a node ran again, from the run's manifest and the run of
the same pipeline before it (see :mod:`physflow.manifests.explain`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError, _store_path


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="why a node ran again (config, inputs, code, seed, evicted or corrupt results)",
        description="Explain a run's nodes against the previous run of the same pipeline. "
        "RUN is a manifest path, a run id (prefix) or 'latest' (default: the latest run that "
        "has NODE).",
    )
    p.add_argument("targets", nargs="*", metavar="[RUN] NODE", help="run and node to explain")
    p.add_argument("--against", default=None, metavar="RUN", help="compare with this run")
    p.add_argument("--all", action="store_true", help="explain every node that was not a hit")
    p.add_argument("--json", action="store_true", help="reasons as JSON")
    p.add_argument(
        "--store", default=None, help="store directory (default: $PHYSFLOW_STORE, else ./.physflow)"
    )


def manifests_dir(path: Path, store: str | None) -> Path:
    """Where the runs of a manifest's store live: its own directory, else the store's."""
    parent = path.resolve().parent
    return parent if parent.name == "manifests" else Path(_store_path(store)) / "manifests"


def _read(path: Path) -> Any:
    from ..manifests.reader import ManifestError, read_manifest

    try:
        return read_manifest(path)
    except ManifestError:
        if path.name.startswith("scan-"):
            raise UsageError(
                f"{path.name} is a scan manifest; explain works on runs (physflow run)"
            ) from None
        raise


def _latest_with(node: str | None, store: str | None) -> Path:
    from ..manifests.explain import run_manifests

    directory = Path(_store_path(store)) / "manifests"
    runs = run_manifests(directory)
    for _, path in reversed(runs):
        if node is None or any(n.id == node for n in _read(path).nodes):
            return path
    if runs and node is not None:
        from ..core.suggest import did_you_mean

        ids = [n.id for n in _read(runs[-1][1]).nodes]
        raise UsageError(
            f"no run in {directory} has a node '{node}'.{did_you_mean(node, ids)} "
            f"Nodes of the latest run: {', '.join(ids)}"
        )
    raise UsageError(f"no runs in {directory}; run a spec first (physflow run SPEC)")


def _resolve(args: argparse.Namespace) -> tuple[Path, str | None]:
    from ..manifests.reader import find_manifest

    targets = list(args.targets)
    if len(targets) > 2 or (not targets and not args.all):
        raise UsageError("usage: physflow explain [RUN] NODE  (or: physflow explain [RUN] --all)")
    if args.all:
        if len(targets) > 1:
            raise UsageError("with --all give at most RUN")
        run, node = (targets[0] if targets else None), None
    else:
        run, node = (targets[0], targets[1]) if len(targets) == 2 else (None, targets[0])
    if run is None or run == "latest":
        return _latest_with(node, args.store), node
    return find_manifest(run, args.store), node


def cmd_explain(args: argparse.Namespace) -> int:
    from ..core.suggest import did_you_mean
    from ..manifests.explain import explain_run, previous_run
    from ..manifests.reader import find_manifest

    path, node = _resolve(args)
    current = _read(path)
    ids = [n.id for n in current.nodes]
    if node is not None and node not in ids:
        raise UsageError(
            f"run {current.run_id} has no node '{node}'.{did_you_mean(node, ids)} "
            f"Nodes: {', '.join(ids)}"
        )
    if args.against:
        before_path: Path | None = find_manifest(args.against, args.store)
    else:
        before_path = previous_run(manifests_dir(path, args.store), current)
    previous = _read(before_path) if before_path is not None else None
    explainer = explain_run(current, previous)
    chosen = [node] if node else [n.id for n in current.nodes if n.status != "hit"]
    reasons = {n: explainer.explain(n) for n in chosen}
    if args.json:
        print(json.dumps({"run": current.run_id, "against": getattr(previous, "run_id", None),
                          "nodes": reasons}, indent=2))  # fmt: skip
        return EXIT_OK
    against = f"against run {previous.run_id}" if previous else "(no earlier run to compare with)"
    print(f"run {current.run_id} ({current.pipeline}) {against}")
    if not chosen:
        print("  every node was a hit: nothing ran again")
    status = {n.id: n.status for n in current.nodes}
    for n in chosen:
        print(f"{n}: {status[n]}")
        for reason in reasons[n]:
            print(f"  - {reason}")
    return EXIT_OK


def run_explanations(manifest: Any, previous_path: Path | None) -> list[str]:
    """``physflow run --explain``: one line per node that ran (or failed) and why."""
    from ..manifests.explain import explain_run

    previous = _read(previous_path) if previous_path is not None else None
    explainer = explain_run(manifest, previous)
    lines = []
    for record in manifest.nodes:
        if record.status in ("miss", "failed"):
            lines.append(f"  why {record.id}: {explainer.summary(record.id)}")
    return lines
