"""``physflow cache stats | verify | gc``."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    _err,
    _store_path,
    parse_duration,
    parse_size,
)


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
    from ..artifacts.store import Store

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
