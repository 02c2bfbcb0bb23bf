"""``physflow scan SPEC``: run a spec's ``scan:`` block (or one given on the command line).

Axes on the command line::

    --grid node.field=1,2,3          values separated by commas (each read as YAML)
    --grid node.field=lin:0:10:11    11 values evenly spaced from 0 to 10
    --grid node.field=log:1e-3:1:4   4 values spaced evenly in log10 from 1e-3 to 1
    --zip node.field=...             same syntax; zip axes advance together
    --range node.field=LOW:HIGH[:log] with --sample N [--sample-method sobol] [--sample-seed S]

Axes given on the command line are merged into the spec's block of the same kind (a CLI axis
replaces the spec's axis of the same path); a different kind replaces the spec's description
(``--zip`` on a spec with ``grid:`` scans only the ``--zip`` axes). Exit codes: 0 every point
succeeded, 1 some point failed, 2 bad spec or usage, 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..scans.axes import ScanError

EXECUTORS = ("serial", "threads", "processes", "dask")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2] if __doc__ else None
    parser.add_argument("spec", help="YAML spec (its scan: block is the default scan)")
    parser.add_argument("-o", "--output", help="write the dataset: results.zarr or results.nc")
    parser.add_argument("--plot", help="draw a quick-look figure (e.g. out.png)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NODE.FIELD=V",
        help="override a config field for every point",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NODE.FIELD=VALUES",
        help="grid axis: a,b,c | lin:START:STOP:N | log:START:STOP:N",
    )
    parser.add_argument(
        "--zip",
        action="append",
        default=[],
        metavar="NODE.FIELD=VALUES",
        help="zip axis (same value syntax as --grid)",
    )
    parser.add_argument(
        "--range",
        dest="ranges",
        action="append",
        default=[],
        metavar="NODE.FIELD=LOW:HIGH[:log]",
        help="sampled range (with --sample)",
    )
    parser.add_argument("--sample", type=int, metavar="N", help="number of sampled points")
    parser.add_argument(
        "--sample-method", choices=("sobol", "halton", "lhs", "random"), default=None
    )
    parser.add_argument("--sample-seed", type=int, default=None)
    parser.add_argument(
        "--collect",
        action="append",
        default=[],
        metavar="NODE[.OUTPUT]",
        help="outputs to collect (comma-separated or repeated)",
    )
    parser.add_argument("--reference", help="collected variable drawn as the reference curve")
    parser.add_argument(
        "--trials",
        metavar="VAR",
        help="collected count n behind a rate: zero rates are drawn as upper bounds 3/n",
    )
    parser.add_argument("--logx", action="store_true", default=None, help="log x axis in --plot")
    parser.add_argument(
        "--logy",
        action="store_true",
        default=None,
        help="log y axis (1-D) or log colour scale (2-D) in --plot",
    )
    parser.add_argument("--seed", type=int, help="pipeline seed (unless 'seed' is an axis)")
    parser.add_argument("--executor", default="serial", choices=EXECUTORS)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--store", help="store path (default: $PHYSFLOW_STORE or ./.physflow)")
    parser.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first failed point (default: record it and go on)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-node progress")


def parse_values(text: str, where: str) -> list[Any]:
    """``a,b,c`` (each value read as YAML) or ``lin:START:STOP:N`` / ``log:START:STOP:N``."""
    import yaml

    from ..pipeline.spec_limits import LimitError, load_value

    kind, _, rest = text.partition(":")
    if kind in ("lin", "log") and rest:
        parts = rest.split(":")
        try:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3 or num < 1:
                raise ValueError
        except (ValueError, IndexError):
            raise ScanError(
                f"{where}: '{text}' should be {kind}:START:STOP:N with N >= 1, e.g. {kind}:1:100:5"
            ) from None
        if kind == "lin":
            values = np.linspace(start, stop, num)
            if _integer_text(parts[0]) and _integer_text(parts[1]) and _all_integral(values):
                return [int(v) for v in np.round(values)]  # lin:1:20:20 -> 1, 2, ..., 20
            return values.tolist()
        if start <= 0 or stop <= 0:
            raise ScanError(f"{where}: log spacing needs START and STOP > 0, got '{text}'.")
        return np.logspace(np.log10(start), np.log10(stop), num).tolist()
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise ScanError(f"{where}: empty value in '{text}'; write e.g. 1,2,3.")
        try:
            values.append(load_value(item))
        except LimitError as exc:
            raise ScanError(f"{where}: {exc.message}") from None
        except (yaml.YAMLError, RecursionError):
            values.append(item)
    return values


def _integer_text(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def _all_integral(values: np.ndarray) -> bool:
    return bool(np.all(np.abs(values - np.round(values)) < 1e-9))


def _axis_option(option: str, text: str) -> tuple[str, list[Any]]:
    path, sep, values = text.partition("=")
    path = path.strip()
    if not sep or not path or not values.strip():
        raise ScanError(f"--{option} {text!r}: write --{option} node.field=VALUES (e.g. 1,2,3).")
    return path, parse_values(values.strip(), f"--{option} {path}")


def _range_option(text: str) -> tuple[str, dict[str, Any]]:
    path, sep, spec = text.partition("=")
    parts = spec.split(":")
    try:
        if not sep or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ValueError
        return path.strip(), {
            "low": float(parts[0]),
            "high": float(parts[1]),
            "log": len(parts) == 3,
        }
    except ValueError:
        raise ScanError(
            f"--range {text!r}: write --range node.field=LOW:HIGH or LOW:HIGH:log."
        ) from None


def scan_request(scan_spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`~physflow.pipeline.scan.run_scan`: the spec's scan block,
    with the command line's axes merged in (see the module docstring)."""
    request: dict[str, Any] = {"axes": None, "mode": "grid", "points": None, "sample": None}
    collect: list[str] = []
    if scan_spec is not None:
        mode = scan_spec.effective_mode
        collect = list(scan_spec.collect)
        if mode in ("grid", "zip"):
            request.update(axes=scan_spec.axes or None, mode=mode)
        elif mode == "points":
            request["points"] = [dict(p) for p in scan_spec.points]
        elif mode == "sample":
            s = scan_spec.sample
            request["sample"] = {
                "n": s.n,
                "method": s.method,
                "seed": s.seed,
                "ranges": {k: list(v) for k, v in s.ranges.items()},
            }
    for option, mode in (("grid", "grid"), ("zip", "zip")):
        given = dict(_axis_option(option, t) for t in getattr(args, option))
        if not given:
            continue
        if request["axes"] is not None and request["mode"] == mode:
            request["axes"] = {**request["axes"], **given}
        else:
            request.update(axes=given, mode=mode, points=None, sample=None)
    if args.ranges or args.sample is not None:
        ranges = dict(_range_option(t) for t in args.ranges)
        base = request["sample"] or {}
        if not ranges and not base.get("ranges"):
            raise ScanError("--sample N needs at least one --range node.field=LOW:HIGH.")
        request.update(
            axes=None,
            points=None,
            sample={
                "n": args.sample if args.sample is not None else base.get("n", 16),
                "method": args.sample_method or base.get("method", "sobol"),
                "seed": args.sample_seed if args.sample_seed is not None else base.get("seed", 0),
                "ranges": {**base.get("ranges", {}), **ranges},
            },
        )
    if args.collect:
        collect = [c.strip() for text in args.collect for c in text.split(",") if c.strip()]
    request["collect"] = collect
    if request["axes"] is None and request["points"] is None and request["sample"] is None:
        raise ScanError(
            f"{args.spec}: the spec has no scan: block and no axes were given; add a scan: block "
            "(grid / zip / points / sample) or pass --grid node.field=1,2,3."
        )
    return request


def write_dataset(ds: Any, path: str | Path) -> Path:
    """Write to ``.zarr`` (a directory store) or ``.nc`` (netCDF4 via h5netcdf)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zarr":
        ds.to_zarr(path, mode="w", consolidated=False)  # v3 has no consolidated metadata
    elif suffix in (".nc", ".nc4", ".netcdf"):
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(path, engine="h5netcdf")
    else:
        raise ScanError(f"-o {path}: unknown format '{suffix}'; use results.zarr or results.nc.")
    return path


def _err(message: str) -> None:
    print(f"physflow: error: {message}", file=sys.stderr)


def run_scan_command(args: argparse.Namespace) -> int:
    """Run ``physflow scan`` with parsed ``args``; returns the exit code."""
    from ..pipeline.graph import PipelineError

    try:
        return _run(args)
    except PipelineError as exc:  # SpecError, ScanError and pipeline wiring errors
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        _err(str(exc) or "interrupted; run the same command again to resume")
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from ..artifacts.store import default_store_path
    from ..pipeline.spec import load_spec_with_scan, parse_set_option
    from ..scans.axes import build_points
    from ..scans.plan import plan_scan, resolve_collect
    from ..scans.run import run_scan
    from .progress import scan_progress

    if args.output and Path(args.output).suffix.lower() not in (".zarr", ".nc", ".nc4", ".netcdf"):
        raise ScanError(f"-o {args.output}: use a .zarr or .nc path.")
    if args.workers is not None and args.workers < 1:
        raise ScanError("--workers must be >= 1.")
    from . import common

    common._CURRENT_STORE[0] = args.store or default_store_path()
    overrides = dict(parse_set_option(text) for text in args.sets)
    pipeline, scan_spec = load_spec_with_scan(args.spec, overrides)
    if args.seed is not None:
        if args.seed < 0:
            raise ScanError("--seed must be >= 0.")
        pipeline.seed = args.seed
    request = scan_request(scan_spec, args)
    points = build_points(request["axes"], request["mode"], request["points"], request["sample"])
    collect = [str(r) for r in resolve_collect(pipeline, request["collect"])]
    for extra in (_reference(scan_spec, args), _trials(scan_spec, args)):
        if extra and extra not in collect:  # the reference curve and counts are collected too
            collect.append(str(resolve_collect(pipeline, [extra])[0]))
    request["collect"] = collect
    plan = plan_scan(pipeline, points)  # cheap; sizes the progress display
    progress = scan_progress(plan, points, quiet=args.quiet)
    with progress:
        result = run_scan(
            pipeline,
            request["axes"],
            request["collect"],
            mode=request["mode"],
            points=request["points"],
            sample=request["sample"],
            store=args.store or default_store_path(),
            executor=args.executor,
            workers=args.workers,
            fail_fast=args.fail_fast,
            progress=progress.on_event,
            overrides=overrides,
        )
    ds = result.dataset()
    m = result.manifest
    print(
        f"{m.pipeline}: scan of {len(m.points)} points ({m.mode}: {' x '.join(m.dims)}): "
        f"{m.hits} hits, {m.misses} misses, {m.points_failed} failed points"
        + (f", {m.points_cancelled} cancelled" if m.points_cancelled else "")
        + f" in {m.duration_s:.3f} s"
    )
    for i, error in list(m.failures.items())[:10]:
        print(f"  FAILED point {i} {m.points[i].values}: {error}", file=sys.stderr)
    print(f"manifest: {result.manifest_path}")
    if args.output:
        print(f"dataset: {write_dataset(ds, args.output)}")
    plot_path = args.plot or (scan_spec.plot.output if scan_spec and scan_spec.plot else None)
    if plot_path:
        print(f"plot: {_plot(ds, plot_path, scan_spec, args)}")
    return EXIT_FAILED if m.points_failed or m.points_cancelled else EXIT_OK


def _reference(scan_spec: Any, args: argparse.Namespace) -> str | None:
    """The variable drawn as the reference curve: --reference, else the spec's ``reference``."""
    return args.reference or (scan_spec.reference if scan_spec is not None else None)


def _trials(scan_spec: Any, args: argparse.Namespace) -> str | None:
    plot = scan_spec.plot if scan_spec is not None else None
    return getattr(args, "trials", None) or (plot.trials if plot is not None else None)


def _plot(ds: Any, path: str, scan_spec: Any, args: argparse.Namespace) -> Path:
    from ..scans.plot import plot_scan

    plot = scan_spec.plot if scan_spec is not None else None
    reference = _reference(scan_spec, args)
    return plot_scan(
        ds,
        path,
        x=plot.x if plot else None,
        y=(plot.y or None) if plot else None,
        reference=reference,
        logx=args.logx if args.logx is not None else bool(plot and plot.logx),
        logy=args.logy if args.logy is not None else bool(plot and plot.logy),
        title=plot.title if plot else None,
        trials=_trials(scan_spec, args),
    )
