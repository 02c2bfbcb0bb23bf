"""The pipeline graph as inline SVG for HTML reports: layered left to right, each node coloured
by its status (hit / ran / failed / skipped). No JavaScript or fonts needed to view it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

#: status -> (fill, label); "miss" means the node ran (its result was not in the cache)
COLOURS = {
    "hit": ("#2e7d32", "hit (reused)"),
    "miss": ("#1565c0", "ran"),
    "failed": ("#c62828", "failed"),
    "skipped": ("#757575", "skipped"),
    "cancelled": ("#9e9e9e", "cancelled"),
}
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 168, 46, 64, 22, 16


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str  # second line, e.g. the stage's short name
    status: str
    detail: str = ""  # tooltip text


def layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of every node (sources are layer 0)."""
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in parents and b in parents:
            parents[b].append(a)
    depth: dict[str, int] = {}

    def visit(n: str, seen: frozenset[str] = frozenset()) -> int:
        if n not in depth:
            if n in seen:  # a cycle cannot come from a manifest; stay finite anyway
                return 0
            ups = [visit(p, seen | {n}) + 1 for p in parents[n]]
            depth[n] = max(ups, default=0)
        return depth[n]

    for n in nodes:
        visit(n)
    return depth


def _positions(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]]
) -> dict[str, tuple[int, int]]:
    """(column, row) per node; rows ordered by the mean row of each node's parents."""
    depth = layers(nodes, edges)
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in parents and b in parents:
            parents[b].append(a)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(depth[n], []).append(n)
    row: dict[str, float] = {}
    where: dict[str, tuple[int, int]] = {}
    for col in sorted(columns):
        members = columns[col]
        members.sort(
            key=lambda n: (
                sum(row[p] for p in parents[n]) / len(parents[n]) if parents[n] else -1.0,
                nodes.index(n),
            )
        )
        for i, n in enumerate(members):
            row[n] = float(i)
            where[n] = (col, i)
    return where


def dag_svg(graph_nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str]]) -> str:
    """An ``<svg>`` element: one ``<g class="node" data-node=.. data-status=..>`` per node."""
    ids = [n.id for n in graph_nodes]
    where = _positions(ids, edges)
    cols = max((c for c, _ in where.values()), default=0) + 1
    rows = max((r for _, r in where.values()), default=0) + 1
    width = PAD * 2 + cols * BOX_W + (cols - 1) * GAP_X
    height = PAD * 2 + rows * BOX_H + (rows - 1) * GAP_Y

    def xy(n: str) -> tuple[int, int]:
        c, r = where[n]
        return PAD + c * (BOX_W + GAP_X), PAD + r * (BOX_H + GAP_Y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" role="img" '
        f'aria-label="pipeline graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    for a, b in edges:
        if a not in where or b not in where:
            continue
        (x1, y1), (x2, y2) = xy(a), xy(b)
        sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        mid = (sx + ex) / 2
        parts.append(
            f'<path class="edge" data-from="{escape(a)}" data-to="{escape(b)}" '
            f'd="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}" fill="none" stroke="#555" '
            'stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
    for node in graph_nodes:
        x, y = xy(node.id)
        fill = COLOURS.get(node.status, ("#6d4c41", node.status))[0]
        tip = escape(node.detail or f"{node.id}: {node.status}")
        parts.append(
            f'<g class="node" data-node="{escape(node.id)}" data-status="{escape(node.status)}" '
            f'tabindex="0"><title>{tip}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="7" fill="{fill}"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + 19}" text-anchor="middle" class="id">'
            f"{escape(_clip(node.id, 22))}</text>"
            f'<text x="{x + BOX_W / 2}" y="{y + 36}" text-anchor="middle" class="sub">'
            f"{escape(_clip(node.label, 26))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def legend_html(counts: Mapping[str, int]) -> str:
    """Coloured swatches for the statuses present."""
    items = []
    for status, (fill, label) in COLOURS.items():
        if counts.get(status):
            items.append(
                f'<span class="swatch" style="background:{fill}"></span>{escape(label)} '
                f"({counts[status]})"
            )
    return '<p class="legend">' + " &nbsp; ".join(items) + "</p>"
