"""The ``physflow`` command line: run / scan / dag / show / explain / report / cache / stages /
manifest-schema.

Exit codes: 0 ok, 1 a node failed, 2 bad spec or usage. Only argparse is imported at module
level so ``physflow --help`` stays instant; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .common import (
    EXECUTORS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    _err,
    add_user_paths,
)


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
    run.add_argument(
        "--explain", action="store_true", help="say why each node that ran was not a cache hit"
    )

    # 'scan' is dispatched before parsing (its options come from physflow.cli.scan);
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

    from ..ml import commands as dataset_commands  # physflow dataset ... (physflow/ml/commands.py)

    dataset_commands.add_parser(sub)

    from . import explain, report

    explain.add_parser(sub)
    report.add_parser(sub)

    schema = sub.add_parser("manifest-schema", help="print the manifest JSON Schema")
    schema.add_argument("--kind", choices=("run", "scan"), default="run")
    schema.add_argument("-o", "--output", default=None)
    return parser


def cmd_scan(argv: Sequence[str]) -> int:
    from . import scan as scan_cli

    parser = argparse.ArgumentParser(prog="physflow scan", description="run a parameter scan")
    scan_cli.add_scan_arguments(parser)
    args = parser.parse_args(list(argv))
    add_user_paths(args.spec)
    return int(scan_cli.run_scan_command(args))


#: command -> (module, function), imported only when the command runs
_COMMANDS = {
    "run": ("run_cmd", "cmd_run"),
    "dag": ("run_cmd", "cmd_dag"),
    "show": ("show", "cmd_show"),
    "cache": ("cache", "cmd_cache"),
    "stages": ("stages", "cmd_stages"),
    "manifest-schema": ("stages", "cmd_manifest_schema"),
    "dataset": ("stages", "cmd_dataset"),
    "explain": ("explain", "cmd_explain"),
    "report": ("report", "cmd_report"),
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
    if isinstance(getattr(args, "spec", None), str):
        add_user_paths(args.spec)  # the user's stage modules next to the spec, or in cwd
    module, function = _COMMANDS[args.command]
    command = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    return int(command(args))


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
    from ..artifacts.errors import StoreLocationError
    from ..manifests.reader import ManifestError
    from ..pipeline.graph import PipelineError

    if isinstance(exc, PipelineError | ManifestError | StoreLocationError):  # incl. SpecError
        _err(str(exc))
        return EXIT_USAGE
    if isinstance(exc, ValueError) and "executor" in str(exc):
        _err(str(exc))
        return EXIT_USAGE
    from .common import storage_problem

    problem = storage_problem(exc)
    if problem is not None:
        _err(problem)
        return EXIT_FAILED
    if os.environ.get("PHYSFLOW_DEBUG"):
        import traceback

        traceback.print_exc()
    else:
        _err(f"{type(exc).__name__}: {exc} (set PHYSFLOW_DEBUG=1 for a traceback)")
    return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
