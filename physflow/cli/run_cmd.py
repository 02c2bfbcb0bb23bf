"""``physflow run`` and ``physflow dag``."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from .common import (
    EXECUTORS,
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _err,
    _load,
    _overrides,
    _store_path,
    write_text,
)


def cmd_run(args: argparse.Namespace) -> int:
    from .progress import make_progress

    if args.executor not in EXECUTORS:
        raise UsageError(f"unknown executor {args.executor!r}; use one of {', '.join(EXECUTORS)}")
    overrides = _overrides(args.sets)
    from ..pipeline.spec import load_spec

    pipeline = load_spec(args.spec, overrides)
    if args.seed is not None:
        if args.seed < 0:
            raise UsageError("--seed must be >= 0")
        pipeline.seed = args.seed
    from ..pipeline.run import ManifestNotWrittenWarning, run_pipeline

    store = _store_path(args.store)
    from . import common

    common._CURRENT_STORE[0] = store
    previous = _previous_run(store, pipeline.name) if getattr(args, "explain", False) else None
    progress = make_progress(len(pipeline.nodes), quiet=args.quiet)
    try:
        with progress, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ManifestNotWrittenWarning)
            result = run_pipeline(
                pipeline,
                store=store,
                executor=args.executor,
                workers=args.workers,
                fail_fast=args.fail_fast,
                progress=progress.on_event,
                overrides=overrides,
            )
    except KeyboardInterrupt as exc:
        _err(str(exc) or "interrupted")
        return 130
    for w in caught:  # other warnings are shown as usual; a lost manifest is the one error line
        if issubclass(w.category, ManifestNotWrittenWarning):
            _err(str(w.message.args[1]))
            return EXIT_FAILED
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    m = result.manifest
    print(
        f"{m.pipeline}: {len(m.nodes)} nodes: {m.hits} hits, {m.misses} misses, "
        f"{m.failed} failed, {m.skipped} skipped in {m.duration_s:.3f} s"
    )
    for uid, error in result.errors.items():
        print(f"  FAILED {uid}: {error}", file=sys.stderr)
    for line in sink_metric_lines(pipeline, m):
        print(line)
    if getattr(args, "explain", False) and "://" in store:
        print("  (--explain reads earlier manifests from a local store only)")
    elif getattr(args, "explain", False):
        from .explain import run_explanations

        for line in run_explanations(m, previous):
            print(line)
    print(f"manifest: {result.manifest_path}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _previous_run(store: str, pipeline: str) -> Any:
    """The latest earlier run of ``pipeline`` in a local store (None: none, or a URL store)."""
    from pathlib import Path

    from ..manifests.explain import run_manifests

    if "://" in store:
        return None
    runs = run_manifests(Path(store) / "manifests", pipeline)
    return runs[-1][1] if runs else None


def sink_metric_lines(pipeline: Any, manifest: Any) -> list[str]:
    """``node.metric = value`` for the numeric results of the nodes nothing depends on."""
    used = {ref.node for node in pipeline.nodes.values() for ref in node.inputs.values()}
    lines = []
    for record in manifest.nodes:
        if record.id in used:
            continue
        for name, value in (record.metrics or {}).items():
            label = record.id if name == "value" else f"{record.id}.{name}"
            lines.append(f"  {label} = {value:.6g}")
    return lines


def dag_text(pipeline: Any, fmt: str) -> str:
    order = pipeline.validate()
    short = {n: pipeline.nodes[n].stage.name.rpartition(":")[2] for n in order}
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        for n in order:
            lines.append(f'    {n}["{n}<br/><small>{short[n]}</small>"]')
        for n in order:
            for name, ref in pipeline.nodes[n].inputs.items():
                label = name if ref.output is None else f"{ref.output} → {name}"
                lines.append(f"    {ref.node} -->|{label}| {n}")
        return "\n".join(lines) + "\n"
    lines = [f'digraph "{pipeline.name}" {{', "    rankdir=LR;", "    node [shape=box];"]
    for n in order:
        lines.append(f'    "{n}" [label="{n}\\n{short[n]}"];')
    for n in order:
        for name, ref in pipeline.nodes[n].inputs.items():
            label = name if ref.output is None else f"{ref.output} -> {name}"
            lines.append(f'    "{ref.node}" -> "{n}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def cmd_dag(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    pipeline = _load(args.spec, args.sets)
    if args.format == "png":
        dot = shutil.which("dot")
        if dot is None:
            raise UsageError(
                "--format png needs graphviz's 'dot' on PATH (apt install graphviz); "
                "use --format mermaid or --format dot instead"
            )
        if not args.output:
            raise UsageError("--format png needs -o FILE.png")
        done = subprocess.run(
            [dot, "-Tpng", "-o", args.output],
            input=dag_text(pipeline, "dot").encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            _err(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
            return EXIT_FAILED
        print(args.output)
        return EXIT_OK
    text = dag_text(pipeline, args.format)
    return write_text(text, args.output)
