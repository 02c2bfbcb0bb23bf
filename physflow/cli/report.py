"""``physflow report RUN|SCAN -o report.html``: one self-contained HTML file about a run or a
scan: the graph coloured by status, a table of nodes (status, time, key, outputs, metrics and
why each one ran), environment and provenance, and for scans the points and plots of the
collected values (inline SVG). Everything comes from the manifest (and, for miss reasons, the
previous run's manifest); nothing in the page needs a network to display."""

from __future__ import annotations

import argparse
from html import escape
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError
from .report_html import Raw, cell, environment_html, key_values, page, table, when
from .report_svg import GraphNode, dag_svg, legend_html


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="a self-contained HTML report of a run or scan (graph, nodes, plots)"
    )
    p.add_argument("manifest", help="run or scan manifest path, id (prefix), or 'latest'")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    p.add_argument(
        "--store", default=None, help="store directory (default: $PHYSFLOW_STORE, else ./.physflow)"
    )


def _manifest_path(ref: str, store: str | None) -> Path:
    from ..manifests.reader import find_manifest, latest_manifest

    if ref == "latest":
        path = latest_manifest(store)
        if path is None:
            from .common import _store_path

            raise UsageError(f"no manifests in {_store_path(store)}; run or scan a spec first")
        return path
    return find_manifest(ref, store)


def cmd_report(args: argparse.Namespace) -> int:
    import msgspec

    path = _manifest_path(args.manifest, args.store)
    data = path.read_bytes()
    try:
        head = msgspec.json.decode(data, type=dict)
    except msgspec.DecodeError:
        raise UsageError(f"{path}: not valid JSON") from None
    if head.get("kind") == "scan" or "scan_id" in head:  # kind is omitted when default
        from ..manifests.scan_manifest import load_scan_manifest

        html = scan_report(load_scan_manifest(path))
    else:
        from ..manifests.reader import read_manifest

        html = run_report(read_manifest(path), path, args.store)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    print(f"report: {out}")
    return EXIT_OK


def _outputs_text(record: Any) -> str:
    from .show import _describe_output

    parts = []
    for name, info in record.outputs.items():
        text = _describe_output(info, record.metrics.get(name))
        parts.append(text if name == "value" else f"{name}={text}")
    return ", ".join(parts)


def _metrics_text(record: Any) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in record.metrics.items())


def _short_stage(name: str) -> str:
    return name.rpartition(":")[2] or name


def _edges(records: Any, node_of: Any = lambda uid: uid) -> list[tuple[str, str]]:
    edges = set()
    for record in records:
        for src in record.input_refs.values():
            edges.add((node_of(src.partition(".")[0]), node_of(record.id)))
    return sorted(edges)


def _header(title: str, status: str, facts: list[str]) -> str:
    return (
        f'<h1>{escape(title)} <span class="{escape(status)}">{escape(status)}</span></h1>'
        f'<p class="meta">{" · ".join(escape(f) for f in facts)}</p>'
    )


def _reasons(manifest: Any, path: Path, store: str | None) -> dict[str, str]:
    """Why each node ran, against the previous run (empty when reasons cannot be derived)."""
    from ..manifests.explain import explain_run, previous_run
    from ..manifests.reader import ManifestError, read_manifest
    from .explain import manifests_dir

    try:
        before = previous_run(manifests_dir(path, store), manifest)
        previous = read_manifest(before) if before is not None else None
    except (ManifestError, OSError):
        return {}
    explainer = explain_run(manifest, previous)
    return {n.id: explainer.summary(n.id) for n in manifest.nodes if n.status != "hit"}


def run_report(m: Any, path: Path, store: str | None = None) -> str:
    """The HTML page of a run manifest."""
    reasons = _reasons(m, path, store)
    nodes = [
        GraphNode(n.id, _short_stage(n.stage), n.status, f"{n.id}: {n.status}") for n in m.nodes
    ]
    counts = {s: sum(1 for n in m.nodes if n.status == s) for s in {n.status for n in m.nodes}}
    facts = [
        f"run {m.run_id}", when(m.started), f"{m.duration_s:.3f} s", f"seed {m.seed}",
        f"{m.hits} hits / {m.misses} ran / {m.failed} failed / {m.skipped} skipped",
        f"executor {m.executor}",
    ]  # fmt: skip
    sections = [
        _header(f"{m.pipeline}", m.status, facts),
        "<h2>Graph</h2>",
        legend_html(counts),
        f'<div class="scroll">{dag_svg(nodes, _edges(m.nodes))}</div>',
        "<h2>Nodes</h2>",
        node_table(m.nodes, reasons),
        *_tracebacks(m.nodes),
        "<h2>Run</h2>",
        key_values(_run_facts(m, path)),
        environment_html(m.environment),
    ]
    return page(f"physflow report: {m.pipeline} {m.run_id}", sections)


NODE_HEADER = ["node", "stage", "status", "time s", "key", "outputs", "metrics", "why it ran"]


def node_table(records: Any, reasons: dict[str, str], row_id: str = "node-") -> str:
    """One row per node record: status, time, key prefix, outputs, metrics, why it ran."""
    rows, attrs = [], []
    for n in records:
        duration = f"{n.duration_s:.3f}" if n.duration_s is not None else "-"
        why = reasons.get(n.id) or (n.error if n.status == "failed" else "") or ""
        rows.append([
            cell(n.id, "node"), Raw(f"<code>{escape(n.stage)}</code>"), cell(n.status, "status"),
            cell(duration, "num"), Raw(f"<code>{escape((n.key or '-')[:15])}</code>"),
            _outputs_text(n), _metrics_text(n), cell(why, "why"),
        ])  # fmt: skip
        attrs.append({"id": f"{row_id}{n.id}", "class": n.status, "data-status": n.status})
    return table(NODE_HEADER, rows, row_attrs=attrs, css="nodes")


def _run_facts(m: Any, path: Path) -> list[tuple[str, Any]]:
    overrides = ", ".join(f"{k}={v!r}" for k, v in m.overrides.items()) or None
    return [
        ("spec", m.spec_path),
        ("spec digest", m.spec_digest),
        ("store", m.store),
        ("overrides", overrides),
        ("manifest", str(path)),
    ]


def _tracebacks(records: Any) -> list[str]:
    failed = [n for n in records if n.status == "failed" and n.traceback]
    if not failed:
        return []
    out = ["<h2>Failures</h2>"]
    for n in failed[:20]:
        out.append(f"<h3>{escape(n.id)}</h3><pre><code>{escape(n.traceback)}</code></pre>")
    return out


# -- scans -----------------------------------------------------------------------------------------


def _scan_graph(m: Any) -> tuple[list[GraphNode], list[tuple[str, str]]]:
    """One graph node per pipeline node, coloured by its worst status over the points."""
    order = list(m.points[0].nodes) if m.points else []
    statuses: dict[str, dict[str, int]] = {node_id: {} for node_id in order}
    stages: dict[str, str] = {}
    for record in m.nodes:
        node_id = record.id.partition("/")[2] or record.id
        bucket = statuses.setdefault(node_id, {})
        bucket[record.status] = bucket.get(record.status, 0) + 1
        stages.setdefault(node_id, record.stage)
    nodes = []
    for node_id, counts in statuses.items():
        ranked = ("failed", "cancelled", "skipped", "miss", "hit")
        worst = next((s for s in ranked if counts.get(s)), "cancelled")
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        label = _short_stage(stages.get(node_id, ""))
        nodes.append(GraphNode(node_id, label, worst, f"{node_id}: {detail or 'not run'}"))
    return nodes, _edges(m.nodes, lambda uid: uid.partition("/")[2] or uid)


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def scan_report(m: Any) -> str:
    """The HTML page of a scan manifest: graph, points, plots, environment."""
    from .report_plots import collected_values, scan_plots

    nodes, edges = _scan_graph(m)
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    values = collected_values(m)
    axes = list(m.points[0].values) if m.points else []
    rows, attrs = [], []
    for i, point in enumerate(m.points[:2000]):
        shown = [_num(point.values[a]) for a in axes]
        collected = [_num(values[ref][i]) for ref in m.collect]
        status = point.status if point.error is None else f"{point.status}: {point.error}"
        rows.append([cell(i, "num"), *shown, cell(status, "status"), *collected])
        attrs.append({"id": f"point-{i}", "class": point.status, "data-status": point.status})
    facts = [
        f"scan {m.scan_id}", when(m.started), f"{m.duration_s:.3f} s",
        f"{m.mode} {' x '.join(m.dims)}: {len(m.points)} points",
        f"{m.hits} hits / {m.misses} ran", f"{m.points_failed} failed points",
        f"{m.points_cancelled} cancelled",
    ]  # fmt: skip
    sections = [
        _header(m.pipeline, m.status, facts),
        "<h2>Graph</h2>",
        legend_html(counts),
        f'<div class="scroll">{dag_svg(nodes, edges)}</div>',
        "<h2>Plots</h2>",
        scan_plots(m, values),
        "<h2>Points</h2>",
        table(["point", *axes, "status", *m.collect], rows, row_attrs=attrs, css="points"),
        f"<details><summary>{len(m.nodes)} distinct nodes (work shared by points is one "
        "record)</summary>",
        node_table(m.nodes[:2000], {}, row_id="record-"),
        "</details>",
        environment_html(m.environment, [("spec", m.spec_path), ("store", m.store)]),
    ]
    return page(f"physflow report: {m.pipeline} {m.scan_id}", sections)
