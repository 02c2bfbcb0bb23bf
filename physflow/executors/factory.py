"""``make_executor``: an executor from its name ("serial", "threads", "processes", "dask")."""

from __future__ import annotations

from typing import Any

from .base import Executor
from .local import SerialExecutor, ThreadExecutor


def make_executor(executor: Any, workers: int | None) -> Executor:
    if isinstance(executor, Executor):
        return executor
    if executor in (None, "serial"):
        return SerialExecutor()
    if executor == "threads":
        return ThreadExecutor(workers)
    if executor == "processes":
        from .processes import ProcessExecutor

        return ProcessExecutor(workers)
    if executor == "dask":
        from .dask import DaskExecutor

        return DaskExecutor(workers=workers, close_after_run=True)
    raise ValueError(
        f"unknown executor {executor!r}; use 'serial', 'threads', 'processes', 'dask' or a "
        "physflow.DaskExecutor(...)"
    )
