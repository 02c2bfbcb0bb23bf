"""HTML building blocks for ``physflow report``: one self-contained page (inline CSS and SVG,
images as data URIs, no network), readable without JavaScript."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555;margin:0 0 12px} .ok{color:#2e7d32} .failed{color:#c62828}
.interrupted{color:#ef6c00}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.hit td.status{color:#2e7d32} tr.miss td.status{color:#1565c0}
tr.failed td.status{color:#c62828;font-weight:600} tr.skipped td.status,
tr.cancelled td.status{color:#757575} tr.selected{outline:2px solid #f9a825}
code{font:12px ui-monospace,Menlo,Consolas,monospace} .why{color:#444;max-width:520px}
.scroll{overflow-x:auto;max-width:100%}
.dag text{fill:#fff;font:12px system-ui,sans-serif} .dag text.sub{font-size:11px;opacity:.85}
.dag g.node{cursor:pointer} .dag g.node:focus rect{stroke:#f9a825;stroke-width:3}
.legend .swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:4px;
vertical-align:-1px} .plot svg{max-width:100%;height:auto} pre{white-space:pre-wrap;margin:0}
"""

#: Clicking a node in the graph selects its row in the table (no network, no libraries).
SCRIPT = """
document.querySelectorAll('svg.dag g.node').forEach(function (g) {
  function select() {
    var id = g.getAttribute('data-node');
    document.querySelectorAll('tr.selected').forEach(function (r) {
      r.classList.remove('selected');
    });
    var row = document.getElementById('node-' + id);
    if (row) { row.classList.add('selected'); row.scrollIntoView({block: 'center'}); }
  }
  g.addEventListener('click', select);
  g.addEventListener('keydown', function (e) { if (e.key === 'Enter') { select(); } });
});
"""


def page(title: str, sections: Iterable[str]) -> str:
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n{body}\n"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def table(
    header: Sequence[str] | None,
    rows: Iterable[Sequence[Any]],
    *,
    row_attrs: Iterable[Mapping[str, str]] | None = None,
    css: str = "",
) -> str:
    """A table; cells are escaped unless they are :class:`Raw`."""
    attrs = list(row_attrs) if row_attrs is not None else None
    out = [f'<div class="scroll"><table class="{escape(css)}">']
    if header is not None:
        out += ["<thead><tr>", *(f"<th>{escape(h)}</th>" for h in header), "</tr></thead>"]
    out.append("<tbody>")
    for i, row in enumerate(rows):
        a = attrs[i] if attrs is not None else {}
        extra = "".join(f' {k}="{escape(v)}"' for k, v in a.items())
        out.append(f"<tr{extra}>")
        for cell in row:
            out.append(cell.td() if isinstance(cell, Raw) else f"<td>{escape(str(cell))}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


class Raw:
    """A cell whose HTML is already built (and escaped where needed)."""

    def __init__(self, html: str, css: str = "") -> None:
        self.html, self.css = html, css

    def td(self) -> str:
        return f'<td class="{self.css}">{self.html}</td>' if self.css else f"<td>{self.html}</td>"


def cell(text: Any, css: str) -> Raw:
    return Raw(escape(str(text)), css)


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = [(k, Raw(f"<code>{escape(str(v))}</code>")) for k, v in pairs if v not in (None, "")]
    return table(None, rows, css="kv")


def environment_html(env: Any, extra: Iterable[tuple[str, Any]] = ()) -> str:
    """Provenance: where and with what the run happened."""
    git = None
    if env.git_commit:
        git = env.git_commit + (" (uncommitted changes)" if env.git_dirty else "")
    pairs = [
        *extra,
        ("python", env.python),
        ("platform", env.platform),
        ("host", env.host),
        ("physflow", env.physflow),
        ("git commit", git),
        ("working directory", env.cwd),
        ("command", " ".join(env.argv) if env.argv else None),
    ]
    packages = table(["package", "version"], sorted(env.packages.items())) if env.packages else ""
    return "<h2>Environment and provenance</h2>" + key_values(pairs) + packages
