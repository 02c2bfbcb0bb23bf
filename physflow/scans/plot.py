"""Quick-look plots of scan datasets: a line per scalar for 1-D scans, a heatmap for 2-D.

matplotlib is imported here only (lazily, by the CLI's ``--plot``); figures are drawn with the
object-oriented API on an Agg canvas, so no global pyplot state or display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .axes import POINT_DIM, ScanError


def scalar_variables(ds: Any) -> list[str]:
    """Variables with no dimensions beyond the scan's (one value per point)."""
    scan_dims = _scan_dims(ds)
    return [
        str(name)
        for name, var in ds.data_vars.items()
        if set(var.dims) <= set(scan_dims) and var.dtype.kind in "biuf"
    ]


def _scan_dims(ds: Any) -> list[str]:
    dims = [str(d) for d in ds.dims if d == POINT_DIM or d in ds.coords]
    return dims


def _axis_coords(ds: Any) -> list[str]:
    """Parameter coordinates along "point" (zip / points / sample scans)."""
    return [str(c) for c, v in ds.coords.items() if v.dims == (POINT_DIM,) and c != POINT_DIM]


def _numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "biuf"


def plot_scan(
    ds: Any,
    path: str | Path,
    *,
    x: str | None = None,
    y: Sequence[str] | None = None,
    reference: str | None = None,
    logx: bool = False,
    logy: bool = False,
    title: str | None = None,
    trials: str | None = None,
) -> Path:
    """Draw ``ds`` to ``path`` (format from the suffix, e.g. .png/.pdf/.svg); returns the path.

    1-D scans (one grid axis, or points along one parameter): one line plot per scalar variable
    against ``x``, with the ``reference`` variable (e.g. a theory curve) dashed on each. On a
    log y axis, points that are exactly 0 (no errors counted) are drawn as upper bounds
    (downward triangles): at 3/n (the 95 % rule of three) when ``trials`` names the collected
    count n behind each rate, else at the bottom of the axis. 2-D grids: one heatmap per
    variable; an axis is logarithmic when its values are log-spaced (or with ``logx``), and
    ``logy`` means a logarithmic colour scale.
    """
    fig = scan_figure(
        ds, x=x, y=y, reference=reference, logx=logx, logy=logy, title=title, trials=trials
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def scan_figure(
    ds: Any,
    *,
    x: str | None = None,
    y: Sequence[str] | None = None,
    reference: str | None = None,
    logx: bool = False,
    logy: bool = False,
    title: str | None = None,
    trials: str | None = None,
) -> Any:
    """The figure :func:`plot_scan` saves (a matplotlib ``Figure`` on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(y) if y else [v for v in scalar_variables(ds) if v not in (reference, trials)]
    for name in [*names, *(v for v in (reference, trials) if v)]:
        if name not in ds.data_vars:
            raise ScanError(
                f"plot: no variable '{name}' in the scan result; variables: "
                f"{', '.join(map(str, ds.data_vars))}. Add it to the scan's collect list."
            )
    if not names:
        raise ScanError("plot: the scan collected no scalar variables to plot.")
    dims = _scan_dims(ds)
    grid_dims = [d for d in dims if d != POINT_DIM]
    if len(grid_dims) == 2 and POINT_DIM not in dims and not x:
        kind = "heatmap"
    elif len(grid_dims) <= 1 or x:
        kind = "line"
    else:
        raise ScanError(
            f"plot: a scan over {len(grid_dims)} grid axes ({', '.join(grid_dims)}) has no "
            "default plot; select a 1-D or 2-D slice (ds.sel(...)) and call plot_scan on it."
        )
    fig = Figure(figsize=(5.5, 3.6 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        if kind == "heatmap":
            _heatmap(fig, ax, ds, name, grid_dims, logx, logy)
        else:
            _line(ax, ds, name, x, reference, (logx, logy), trials)
    fig.suptitle(title or f"scan of {ds.attrs.get('pipeline', 'pipeline')}")
    return fig


def _x_name(ds: Any, x: str | None) -> str:
    if x:
        if x not in ds.coords:
            raise ScanError(
                f"plot: x '{x}' is not a scan axis; axes: {', '.join(map(str, ds.coords))}."
            )
        return x
    grid = [d for d in _scan_dims(ds) if d != POINT_DIM]
    if grid:
        return grid[0]
    numeric = [c for c in _axis_coords(ds) if _numeric(ds[c].values)]
    if not numeric:
        raise ScanError("plot: the scan has no numeric axis to put on x; pass x=... .")
    return numeric[0]


def _columns(ds: Any, var: Any, xname: str, extra: list[str]) -> np.ndarray:
    """``var`` as (len(x), combinations of ``extra``), broadcasting dims it lacks."""
    import xarray as xr

    target = xr.broadcast(var, *(ds[d] for d in extra if d in ds.coords))[0]
    dims = [*ds[xname].dims, *extra]
    target = target.transpose(*dims, ...)
    return np.asarray(target.values).reshape(ds[xname].size, -1)


def _line(
    ax: Any,
    ds: Any,
    name: str,
    x: str | None,
    reference: str | None,
    scales: tuple[bool, bool],
    trials: str | None = None,
) -> None:
    logx, logy = scales
    xname = _x_name(ds, x)
    var = ds[name]
    xs = np.asarray(ds[xname].values)
    extra = [d for d in var.dims if d not in ds[xname].dims]
    order = np.argsort(xs, kind="stable") if _numeric(xs) else np.arange(xs.size)
    measured = _columns(ds, var, xname, extra)  # other grid axes (e.g. seed): a line each
    labels = _extra_labels(ds, extra) if extra else [name]
    refs = _columns(ds, ds[reference], xname, extra) if reference else None
    counts = _columns(ds, ds[trials], xname, extra) if trials else None
    # points along "point" that vary more than x (samples, explicit points): markers only,
    # since neighbours in x are not neighbours in the other parameters
    scattered = ds[xname].dims == (POINT_DIM,) and len(_axis_coords(ds)) > 1
    style = {"linestyle": "none"} if scattered else {}
    zeros: list[tuple[Any, np.ndarray, np.ndarray, str]] = []
    for k in range(measured.shape[1]):
        (line,) = ax.plot(xs[order], measured[order, k], marker="o", ms=3, label=labels[k], **style)
        if logy:
            zero = np.asarray(measured[order, k] == 0)
            if zero.any():
                bound = 3.0 / counts[order, k] if counts is not None else None
                zeros.append(
                    (line, xs[order][zero], bound[zero] if bound is not None else None, labels[k])
                )
        if refs is not None:
            label = reference if refs.shape[1] == 1 or not extra else f"{reference} ({labels[k]})"
            ax.plot(
                xs[order],
                refs[order, k],
                "--",
                color=line.get_color(),
                lw=1.2,
                label=label if k == 0 or extra else None,
            )
    ax.set_xlabel(xname)
    ax.set_ylabel(name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log", nonpositive="mask")
        _upper_bounds(ax, zeros, trials)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def _upper_bounds(ax: Any, zeros: list[tuple[Any, Any, Any, str]], trials: str | None) -> None:
    """Zero values on a log axis: downward triangles at 3/n, or at the bottom of the axis."""
    if not zeros:
        return
    floor = ax.get_ylim()[0]
    if not np.isfinite(floor) or floor <= 0:
        floor = 1e-12
    for line, xs, bound, label in zeros:
        ys = bound if bound is not None else np.full(xs.shape, floor)
        where = f"3/{trials} (95 %)" if bound is not None else "axis floor"
        ax.plot(
            xs,
            ys,
            linestyle="none",
            marker="v",
            ms=7,
            mfc="none",
            color=line.get_color(),
            label=f"{label} = 0 (upper bound at {where})",
        )


def _extra_labels(ds: Any, dims: list[str]) -> list[str]:
    import itertools

    values = [ds[d].values.tolist() if d in ds.coords else list(range(ds.sizes[d])) for d in dims]
    return [
        ", ".join(f"{d}={v}" for d, v in zip(dims, combo)) for combo in itertools.product(*values)
    ]


def log_spaced(values: Any) -> bool:
    """True for 3+ positive values evenly spaced in log10 but not linearly (log:... axes)."""
    v = np.asarray(values)
    if v.dtype.kind not in "iuf" or v.size < 3 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return False
    v = np.sort(v.astype(float))
    lin = np.diff(v)
    logd = np.diff(np.log10(v))
    even = np.allclose(logd, logd[0], rtol=1e-3, atol=0)
    return bool(even and not np.allclose(lin, lin[0], rtol=1e-3, atol=0))


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted centres: midpoints in linear or log10 space."""
    v = np.log10(values) if log else values.astype(float)
    if v.size == 1:
        mids = np.array([v[0] - 0.5, v[0] + 0.5])
    else:
        inner = (v[1:] + v[:-1]) / 2
        mids = np.concatenate([[2 * v[0] - inner[0]], inner, [2 * v[-1] - inner[-1]]])
    return 10**mids if log else mids


def _heatmap(
    fig: Any, ax: Any, ds: Any, name: str, dims: list[str], logx: bool, logy: bool
) -> None:
    from matplotlib.colors import LogNorm

    ydim, xdim = dims
    data = np.asarray(ds[name].transpose(ydim, xdim).values, dtype=float)
    xs, ys = np.asarray(ds[xdim].values), np.asarray(ds[ydim].values)
    xs = xs if _numeric(xs) else np.arange(xs.size)
    ys = ys if _numeric(ys) else np.arange(ys.size)
    xo, yo = np.argsort(xs, kind="stable"), np.argsort(ys, kind="stable")
    xs, ys, data = xs[xo], ys[yo], data[np.ix_(yo, xo)]
    xlog = bool((logx and np.all(xs > 0)) or log_spaced(xs))
    ylog = log_spaced(ys)
    norm = None
    if logy:
        positive = data[np.isfinite(data) & (data > 0)]
        if positive.size:
            norm = LogNorm(vmin=positive.min(), vmax=positive.max())
            data = np.where(data > 0, data, np.nan)
    mesh = ax.pcolormesh(_edges(xs, xlog), _edges(ys, ylog), data, shading="flat", norm=norm)
    fig.colorbar(mesh, ax=ax, label=name)
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    ax.set_xlabel(xdim)
    ax.set_ylabel(ydim)
