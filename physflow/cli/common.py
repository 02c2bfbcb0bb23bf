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


def write_text(text: str, output: str | None) -> int:
    """Write a command's text result to ``output`` (a file) or standard output."""
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def add_user_paths(spec: str | None) -> list[str]:
    """Put the spec file's directory and the current directory on the import path, as pytest
    does for its rootdir, so ``stage: osc:tone`` finds ``osc.py`` next to the spec.

    Both go to the front of ``sys.path`` (like a script's own directory) and of
    ``$PYTHONPATH``, which worker processes (processes and dask executors) inherit. Returns the
    directories added.
    """
    import os

    dirs: list[str] = []
    if spec:
        dirs.append(os.path.dirname(os.path.abspath(spec)))
    dirs.append(os.getcwd())
    added = []
    for d in reversed(dict.fromkeys(dirs)):
        if d not in sys.path:
            sys.path.insert(0, d)
            added.append(d)
    old = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*dirs, *old]))
    return added


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


_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """``50G``, ``50GB``, ``500 MB``, ``2GiB``, ``1.5T``, ``4096`` -> bytes.

    K/M/G/T/P with or without ``B`` are decimal (``50G`` = 50 * 10**9, as disk vendors and
    ``df -H`` count); ``Ki``/``KiB`` ... are binary.
    """
    t = text.strip().lower().replace(" ", "").replace("_", "")
    num = t.rstrip("kmgtpib")
    unit = t[len(num) :]
    binary = "i" in unit
    prefix = unit.removesuffix("b").removesuffix("i")
    valid = unit in ("", "b") or (
        prefix in _SIZE_POWERS and unit in (prefix, prefix + "b", prefix + "i", prefix + "ib")
    )
    try:
        if not valid or not num:
            raise ValueError
        value = float(num) * (1024 if binary else 1000) ** _SIZE_POWERS[prefix if unit else ""]
        if value < 0 or value != value:
            raise ValueError
        return int(value)
    except (ValueError, KeyError, OverflowError):
        raise UsageError(
            f"cannot read size {text!r}; write e.g. 50G, 500MB, 2GiB or a number of bytes"
        ) from None


def parse_duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise UsageError(f"cannot read duration {text!r}; write e.g. 30m, 12h or 7d") from None


_FULL = (28, 122, 27, 30)  # ENOSPC, EDQUOT, EFBIG, EROFS


def storage_problem(exc: BaseException) -> str | None:
    """One line for a store that cannot be written (disk full, quota, read-only), naming the
    store; None for other errors."""
    import sqlite3

    from ..manifests.writer import ManifestWriteError

    store = _store_path(None) if _CURRENT_STORE[0] is None else _CURRENT_STORE[0]
    hint = "free space (physflow cache gc --max-bytes ...) or pass --store on another disk"
    if isinstance(exc, ManifestWriteError):
        return f"{exc}; the results themselves are stored: {hint}, then run again"
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return f"cannot write to the store at {store}: {exc.strerror or exc}; {hint}"
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc) for word in ("disk", "full", "readonly", "read-only")
    ):
        return f"cannot write the store's records at {store}: {exc}; {hint}"
    return None


#: the store the running command uses (set by commands that run pipelines, for messages)
_CURRENT_STORE: list[str | None] = [None]
