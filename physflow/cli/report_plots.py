"""Scan plots for HTML reports, drawn from the scan manifest alone (collected scalars are
recorded per node), inline as SVG: the same figure ``physflow scan --plot`` draws."""

from __future__ import annotations

import io
from html import escape
from typing import Any


def _scalar(record: Any, ref: str) -> float | None:
    """The value of ``node``, ``node.output`` or ``node.output.key`` in a node record."""
    _, _, rest = ref.partition(".")
    output, _, key = rest.partition(".")
    if key:
        return record.metrics.get(f"{output}.{key}")
    info = record.outputs.get(output or "value")
    value = info.value if info is not None else None
    if value is None:  # NaN and infinities are kept in the metrics only
        value = record.metrics.get(output or "value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def collected_values(m: Any) -> dict[str, list[Any]]:
    """ref -> one entry per point: the number, or "-" (failed point, or not a scalar)."""
    by_id = {r.id: r for r in m.nodes}
    found: dict[str, list[Any]] = {ref: [] for ref in m.collect}
    for point in m.points:
        for ref in m.collect:
            record = by_id.get(point.nodes.get(ref.partition(".")[0], ""))
            value = None
            if record is not None and record.status in ("hit", "miss"):
                value = _scalar(record, ref)
            found[ref].append(value if value is not None else "-")
    return found


def _dataset(m: Any, values: dict[str, list[Any]]) -> Any:
    import numpy as np
    import xarray as xr

    shape = tuple(m.shape)
    data_vars = {}
    for ref, column in values.items():
        if all(v == "-" for v in column):
            continue
        array = np.full(shape, np.nan)
        for point, v in zip(m.points, column):
            if v != "-":
                array[tuple(point.index)] = v
        data_vars[ref] = (tuple(m.dims), array)
    coords = {}
    for name, coord in m.coords.items():
        if name in m.dims:
            coords[name] = (name, list(coord))
        elif len(m.dims) == 1:
            coords[name] = (m.dims[0], list(coord))
    return xr.Dataset(data_vars, coords=coords, attrs={"pipeline": m.pipeline})


def _logy(ds: Any) -> bool:
    import numpy as np

    for var in ds.data_vars.values():
        v = np.asarray(var.values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size < 2 or np.any(v <= 0) or v.max() / v.min() < 100:
            return False
    return True


def scan_plots(m: Any, values: dict[str, list[Any]]) -> str:
    """The scan figure as inline SVG, or a note saying why there is none."""
    try:
        import matplotlib  # noqa: F401
        import xarray  # noqa: F401
    except ImportError as exc:
        return f"<p>No plots: {escape(str(exc))} (pip install 'physflow[plot,xarray]').</p>"
    from ..scans.axes import ScanError
    from ..scans.plot import scan_figure

    ds = _dataset(m, values)
    if not ds.data_vars:
        return "<p>No plots: the scan collected no scalar values.</p>"
    # a seed axis gives one line per seed against the other axis, not a heatmap
    other = [d for d in m.dims if d != "seed"]
    x = other[0] if "seed" in m.dims and len(m.dims) == 2 else None
    try:
        fig = scan_figure(ds, x=x, logy=_logy(ds))
    except ScanError as exc:
        return f"<p>No default plot: {escape(str(exc))}</p>"
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: inline SVG in HTML
    return f'<div class="plot">{svg}</div>'
