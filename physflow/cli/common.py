"""What every command shares: exit codes, usage errors, loading a spec with --set overrides."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXECUTORS = ("serial", "threads", "processes", "dask")


class UsageError(Exception):
    """Bad command-line usage: printed as one line, exit code 2."""


def _err(message: str) -> None:
    print(f"physflow: error: {message}", file=sys.stderr)


def _overrides(sets: Sequence[str]) -> dict[str, Any]:
    from ..pipeline.spec import parse_set_option

    values: dict[str, Any] = {}
    for text in sets:
        path, value = parse_set_option(text)
        values[path] = value
    return values


def _load(spec: str, sets: Sequence[str]) -> Any:
    from ..pipeline.spec import load_spec

    return load_spec(spec, _overrides(sets))


def _store_path(arg: str | None) -> str:
    from ..artifacts.store import default_store_path

    if arg is not None and not arg.strip():
        raise UsageError("--store is empty; give a directory (e.g. --store ./.physflow)")
    return default_store_path() if arg is None else arg


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
