"""Detecting a script that starts worker processes without an ``if __name__ == "__main__":``
guard, before any worker starts.

The processes and dask executors start workers with ``spawn``/``forkserver``: each worker
re-imports the main script, so a script that runs its pipeline at top level would run it again
in every worker, and Python stops that with a bootstrap ``RuntimeError`` in the worker. The
runner then only sees a worker that died with exit code 1, which looks like a crash. Checking
the caller's script first names the real problem and the line to move.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
from typing import Any

from .errors import PipelineError

#: Executors whose workers re-import ``__main__``.
SPAWNING = ("processes", "dask")


class MainGuardError(PipelineError):
    """A script would run its pipeline again in every worker process."""


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either side)."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    consts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and consts == ["__main__"]


@functools.lru_cache(maxsize=16)
def _guarded_ranges(path: str, mtime: float) -> tuple[tuple[int, int], ...]:
    """Line ranges of the bodies of ``if __name__ == "__main__":`` blocks in ``path``."""
    del mtime  # part of the cache key only
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, ValueError):
        return ()
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.body:
            ranges.append((node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno))
    return tuple(ranges)


def unguarded_main_call() -> tuple[str, int] | None:
    """(script, line) when the current call comes from top-level code of the main script that
    is not inside an ``if __name__ == "__main__":`` block; None otherwise (interactive use,
    ``python -c``, notebooks, calls made after the script finished importing, guarded calls)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    path = os.path.abspath(path)
    frame: Any = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if (
            code.co_name == "<module>"
            and frame.f_globals.get("__name__") == "__main__"
            and os.path.abspath(code.co_filename) == path
        ):
            line = frame.f_lineno
            ranges = _guarded_ranges(path, os.path.getmtime(path))
            if any(start <= line <= end for start, end in ranges):
                return None
            return path, line
        frame = frame.f_back
    return None


def spawning_executor(executor: Any) -> str | None:
    """The name of an executor whose workers this process starts and that re-import the main
    script (``"processes"``, ``"dask"`` without an address or client), else None."""
    if isinstance(executor, str):
        return executor if executor in SPAWNING else None
    name = getattr(executor, "name", None)
    if name == "processes" and getattr(executor, "start_method", "spawn") != "fork":
        return name
    if name == "dask" and getattr(executor, "address", None) is None:
        return None if getattr(executor, "client", None) is not None else name
    return None


def guard_message(executor: str, path: str, line: int) -> str:
    script = os.path.basename(path)
    return (
        f"the {executor} executor starts worker processes that re-import your script "
        f"{script}, which would run this pipeline again in every worker. Put the code that "
        f"runs it ({script}, line {line}) under 'if __name__ == \"__main__\":', or use "
        "executor='threads' or 'serial'."
    )


def check_main_guard(executor: Any) -> None:
    """Raise :class:`MainGuardError` when ``executor`` spawns workers and the pipeline is run
    from unguarded top-level code of the main script (see the module docstring)."""
    name = spawning_executor(executor)
    if name is None:
        return
    found = unguarded_main_call()
    if found is not None:
        raise MainGuardError(guard_message(name, *found))
