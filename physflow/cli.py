"""The ``physflow`` command line: run / scan / dag / show / cache / stages / manifest-schema.

Exit codes: 0 ok, 1 a node failed, 2 bad spec or usage. Only argparse is imported at module
level so ``physflow --help`` stays instant; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXECUTORS = ("serial", "threads", "processes", "dask")


class UsageError(Exception):
    """Bad command-line usage: printed as one line, exit code 2."""


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        default=None,
        help="store directory (default: $PHYSFLOW_STORE, else ./.physflow)",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NODE.FIELD=VALUE",
        help="override a config field (repeatable); VALUE is YAML, converted by the config class",
    )
    p.add_argument("--seed", type=int, default=None, help="run seed (overrides the spec's)")
    p.add_argument("--executor", default="serial", help=f"one of {', '.join(EXECUTORS)}")
    p.add_argument("--workers", type=int, default=None, help="worker count for the executor")
    _add_store(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="physflow",
        description="Run physics simulations as DAGs of cached, typed, reproducible stages.",
        epilog="Exit codes: 0 ok, 1 a node failed, 2 bad spec or usage.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a YAML spec (cached nodes are skipped)")
    run.add_argument("spec", help="path to a YAML spec")
    _add_run_options(run)
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failed node")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress display")

    # 'scan' is dispatched before parsing (its options come from physflow.pipeline.scan_cli);
    # it is listed here for --help only.
    sub.add_parser("scan", help="run the spec's scan and save an xarray result (see scan -h)")

    dag = sub.add_parser("dag", help="draw a spec's graph (mermaid, dot, or png via graphviz)")
    dag.add_argument("spec")
    dag.add_argument("--format", choices=("mermaid", "dot", "png"), default="mermaid")
    dag.add_argument("-o", "--output", default=None, help="write here instead of stdout")
    dag.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE.FIELD=V")

    show = sub.add_parser("show", help="table of a run manifest's nodes")
    show.add_argument("manifest", help="manifest path, run id (prefix), or 'latest'")
    show.add_argument("--json", action="store_true", help="print the manifest JSON")
    _add_store(show)

    cache = sub.add_parser("cache", help="store maintenance: stats | verify | gc")
    cache_sub = cache.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (("stats", "entries and bytes by kind"), ("verify", "check every digest")):
        _add_store(cache_sub.add_parser(name, help=text))
    gc = cache_sub.add_parser("gc", help="remove least-recently-used entries and stale temp files")
    _add_store(gc)
    gc.add_argument("--max-bytes", default=None, help="keep at most this much (e.g. 500MB, 2GB)")
    gc.add_argument("--older-than", default=None, help="remove entries unused for (e.g. 7d, 12h)")
    gc.add_argument("--keep-manifests", type=int, default=None, help="keep the N newest runs")
    gc.add_argument("--dry-run", action="store_true", help="report what would be removed")

    stages = sub.add_parser("stages", help="registered stages with their config fields")
    stages.add_argument("prefix", nargs="?", default="", help="only names starting with this")
    stages.add_argument("--json", action="store_true")

    from .ml import commands as dataset_commands  # physflow dataset ... (physflow/ml/commands.py)

    dataset_commands.add_parser(sub)

    schema = sub.add_parser("manifest-schema", help="print the manifest JSON Schema")
    schema.add_argument("--kind", choices=("run", "scan"), default="run")
    schema.add_argument("-o", "--output", default=None)
    return parser


# -- helpers -------------------------------------------------------------------------------------


def _err(message: str) -> None:
    print(f"physflow: error: {message}", file=sys.stderr)


def _overrides(sets: Sequence[str]) -> dict[str, Any]:
    from .pipeline.spec import parse_set_option

    values: dict[str, Any] = {}
    for text in sets:
        path, value = parse_set_option(text)
        values[path] = value
    return values


def _load(spec: str, sets: Sequence[str]) -> Any:
    from .pipeline.spec import load_spec

    return load_spec(spec, _overrides(sets))


def _store_path(arg: str | None) -> str:
    from .artifacts.store import default_store_path

    return arg or default_store_path()


def parse_size(text: str) -> int:
    units = {
        "": 1,
        "b": 1,
        "kb": 10**3,
        "mb": 10**6,
        "gb": 10**9,
        "tb": 10**12,
        "kib": 2**10,
        "mib": 2**20,
        "gib": 2**30,
        "tib": 2**40,
    }
    t = text.strip().lower()
    num = t.rstrip("kmgtib")
    unit = t[len(num) :]
    try:
        return int(float(num) * units[unit])
    except (ValueError, KeyError):
        raise UsageError(f"cannot read size {text!r}; write e.g. 500MB or 2GiB") from None


def parse_duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise UsageError(f"cannot read duration {text!r}; write e.g. 30m, 12h or 7d") from None


# -- run -------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .cli_progress import make_progress

    if args.executor not in EXECUTORS:
        raise UsageError(f"unknown executor {args.executor!r}; use one of {', '.join(EXECUTORS)}")
    overrides = _overrides(args.sets)
    from .pipeline.spec import load_spec

    pipeline = load_spec(args.spec, overrides)
    if args.seed is not None:
        if args.seed < 0:
            raise UsageError("--seed must be >= 0")
        pipeline.seed = args.seed
    from .pipeline.runner import run_pipeline

    progress = make_progress(len(pipeline.nodes), quiet=args.quiet)
    try:
        with progress:
            result = run_pipeline(
                pipeline,
                store=_store_path(args.store),
                executor=args.executor,
                workers=args.workers,
                fail_fast=args.fail_fast,
                progress=progress.on_event,
                overrides=overrides,
            )
    except KeyboardInterrupt as exc:
        _err(str(exc) or "interrupted")
        return 130
    m = result.manifest
    print(
        f"{m.pipeline}: {len(m.nodes)} nodes: {m.hits} hits, {m.misses} misses, "
        f"{m.failed} failed, {m.skipped} skipped in {m.duration_s:.3f} s"
    )
    for uid, error in result.errors.items():
        print(f"  FAILED {uid}: {error}", file=sys.stderr)
    for line in sink_metric_lines(pipeline, m):
        print(line)
    print(f"manifest: {result.manifest_path}")
    return EXIT_OK if result.ok else EXIT_FAILED


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


# -- scan ------------------------------------------------------------------------------------------


def cmd_scan(argv: Sequence[str]) -> int:
    try:
        from .pipeline import scan_cli
    except ImportError as exc:
        _err(f"'physflow scan' is not available in this installation ({exc})")
        return EXIT_USAGE
    parser = argparse.ArgumentParser(prog="physflow scan", description="run a parameter scan")
    scan_cli.add_scan_arguments(parser)
    args = parser.parse_args(list(argv))
    return int(scan_cli.run_scan_command(args))


# -- dag -------------------------------------------------------------------------------------------


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
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


# -- show ------------------------------------------------------------------------------------------


def _describe_output(info: Any) -> str:
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
            (f"{k}={_describe_output(v)}" if k != "value" else _describe_output(v))
            for k, v in node.outputs.items()
        )
        if node.status == "failed" and node.error:
            outs = node.error if len(node.error) < 80 else node.error[:77] + "..."
        duration = f"{node.duration_s:.3f}" if node.duration_s is not None else "-"
        rows.append([node.id, node.stage.rpartition(":")[2], node.status, duration, outs])
    return rows


def cmd_show(args: argparse.Namespace) -> int:
    from .manifests.reader import ManifestError, find_manifest, latest_manifest, read_manifest

    if args.manifest == "latest":
        path = latest_manifest(args.store)
        if path is None:
            raise UsageError(f"no manifests in {_store_path(args.store)}")
    else:
        path = find_manifest(args.manifest, args.store)
    if args.json:
        sys.stdout.write(path.read_text())
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
    from .cli_progress import print_table

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
    import msgspec

    from .manifests.scan_manifest import ScanManifest

    m = msgspec.json.decode(path.read_bytes(), type=ScanManifest)
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
    )
    from .cli_progress import print_table

    print_table(title, header, rows, status_column=len(axes) + 1)
    print(f"store: {m.store}")
    return EXIT_OK


# -- cache -----------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    try:
        import msgspec

        if isinstance(value, msgspec.Struct):
            return msgspec.to_builtins(value)
    except ImportError:  # pragma: no cover
        pass
    return value


def _print_report(title: str, value: Any) -> None:
    value = _plain(value)
    print(title)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list | tuple) and len(item) > 20:
                item = f"{len(item)} entries: {', '.join(map(str, item[:5]))}, ..."
            print(f"  {key}: {item}")
    elif value is not None:
        print(f"  {value}")


def _report_problems(value: Any) -> int:
    """How many problems a verify report lists (0 when clean)."""
    value = _plain(value)
    if isinstance(value, dict):
        for key in ("ok", "clean"):
            if key in value and isinstance(value[key], bool):
                return 0 if value[key] else 1
        count = 0
        for key in ("bad_objects", "bad_records", "corrupt", "missing", "problems", "errors"):
            item = value.get(key)
            count += len(item) if isinstance(item, list | tuple | dict) else int(bool(item))
        return count
    if isinstance(value, list | tuple):
        return len(value)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from .artifacts.store import Store

    if args.action is None:
        raise UsageError("cache needs an action: stats, verify or gc")
    store = Store(_store_path(args.store))
    method = getattr(store, args.action, None)
    if method is None:
        _err(f"this physflow store has no '{args.action}' operation yet")
        return EXIT_USAGE
    if args.action == "gc":
        options: dict[str, Any] = {}
        if args.max_bytes is not None:
            options["max_bytes"] = parse_size(args.max_bytes)
        if args.older_than is not None:
            options["older_than"] = parse_duration(args.older_than)
        if args.keep_manifests is not None:
            options["keep_manifests"] = args.keep_manifests
        if args.dry_run:
            options["dry_run"] = True
        report = method(**options)
    else:
        report = method()
    _print_report(f"{args.action} {store.location}", report)
    if args.action == "verify" and _report_problems(report):
        return EXIT_FAILED
    return EXIT_OK


# -- stages ----------------------------------------------------------------------------------------


def stage_info(name: str, path: str) -> dict[str, Any]:
    from .pipeline.registry import resolve_registered
    from .pipeline.spec import type_name

    info: dict[str, Any] = {"name": name, "path": path}
    try:
        stage = resolve_registered(name)
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        return info
    import msgspec

    info["version"] = stage.version
    info["inputs"] = list(stage.input_names)
    info["outputs"] = list(stage.output_names)
    info["rng"] = stage.uses_rng
    fields = []
    if stage.config_type is not None:
        info["config"] = stage.config_type.__qualname__
        for f in msgspec.structs.fields(stage.config_type):
            entry: dict[str, Any] = {"name": f.name, "type": type_name(f.type)}
            if f.default is not msgspec.NODEFAULT:
                entry["default"] = f.default
            elif f.default_factory is not msgspec.NODEFAULT:
                entry["default"] = f.default_factory()
            else:
                entry["required"] = True
            fields.append(entry)
    info["fields"] = fields
    doc = (stage.__doc__ or "").strip().splitlines()
    info["doc"] = doc[0] if doc else ""
    return info


def cmd_stages(args: argparse.Namespace) -> int:
    from .pipeline.registry import registered_names

    names = {k: v for k, v in registered_names().items() if k.startswith(args.prefix)}
    infos = [stage_info(k, v) for k, v in names.items()]
    if args.json:
        import json

        print(json.dumps(infos, indent=2, default=repr))
        return EXIT_OK
    if not infos:
        print("no registered stages" + (f" starting with {args.prefix!r}" if args.prefix else ""))
        return EXIT_OK
    for info in infos:
        if "error" in info:
            print(f"{info['name']}  ({info['path']})  cannot load: {info['error']}")
            continue
        head = f"{info['name']}  v{info['version']}  ({info['path']})"
        print(head + (f"  - {info['doc']}" if info["doc"] else ""))
        ins = ", ".join(info["inputs"]) or "-"
        outs = ", ".join(info["outputs"])
        print(f"    inputs: {ins}    outputs: {outs}" + ("    uses rng" if info["rng"] else ""))
        if info.get("config"):
            print(f"    config {info['config']}:")
            for f in info["fields"]:
                default = "(required)" if f.get("required") else f"= {f['default']!r}"
                print(f"      {f['name']}: {f['type']} {default}")
    return EXIT_OK


# -- manifest-schema -------------------------------------------------------------------------------


def cmd_manifest_schema(args: argparse.Namespace) -> int:
    import json

    from .manifests.schema_export import manifest_json_schema

    try:
        text = json.dumps(manifest_json_schema(args.kind), indent=2) + "\n"
    except ImportError as exc:
        raise UsageError(f"--kind {args.kind}: not available ({exc})") from None
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


# -- entry point -----------------------------------------------------------------------------------


def cmd_dataset(args: argparse.Namespace) -> int:
    from .ml.commands import run

    return run(args)


_COMMANDS = {
    "dataset": cmd_dataset,
    "run": cmd_run,
    "dag": cmd_dag,
    "show": cmd_show,
    "cache": cmd_cache,
    "stages": cmd_stages,
    "manifest-schema": cmd_manifest_schema,
}


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "scan":
        return cmd_scan(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"physflow {version('physflow')}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return _COMMANDS[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (console script: ``physflow``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # the reader (head, a pager) went away: stop quietly, like Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        return _handle(exc)


def _handle(exc: Exception) -> int:
    from .manifests.reader import ManifestError
    from .pipeline.graph import PipelineError

    if isinstance(exc, PipelineError | ManifestError):  # includes SpecError
        _err(str(exc))
        return EXIT_USAGE
    if isinstance(exc, ValueError) and "executor" in str(exc):
        _err(str(exc))
        return EXIT_USAGE
    if os.environ.get("PHYSFLOW_DEBUG"):
        import traceback

        traceback.print_exc()
    else:
        _err(f"{type(exc).__name__}: {exc} (set PHYSFLOW_DEBUG=1 for a traceback)")
    return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
