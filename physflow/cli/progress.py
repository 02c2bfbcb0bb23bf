"""Progress display for ``physflow run``: rich on a terminal, plain lines otherwise.

Both consume :class:`~physflow.pipeline.events.NodeEvent`; the plain form writes one line per
finished node to stderr so logs and CI output stay readable and stdout keeps only the summary.
"""

from __future__ import annotations

import sys
import time
from typing import Any

_DONE = ("hit", "done", "failed", "skipped")


class PlainProgress:
    """``[3/5] hit   tone  (demo:tone)`` lines on stderr."""

    def __init__(self, total: int, stream: Any = None, quiet: bool = False) -> None:
        self.total, self.done, self.hits = total, 0, 0
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def on_event(self, event: Any) -> None:
        if event.kind not in _DONE:
            return
        self.done += 1
        self.hits += event.kind == "hit"
        if self.quiet:
            return
        timing = f" {event.duration_s:.3f}s" if event.duration_s is not None else ""
        error = f"  {event.error}" if event.error else ""
        print(
            f"[{self.done}/{self.total}] {event.kind:<7} {event.uid}{timing}{error}",
            file=self.stream,
            flush=True,
        )


class RichProgress(PlainProgress):
    """A live bar: nodes done/total, hits, the stage running now, elapsed time."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]nodes"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("hits {task.fields[hits]}"),
            TextColumn("{task.fields[running]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task("run", total=total, hits=0, running="")
        self.running: dict[str, float] = {}

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.update(self.task, running="")
        self.progress.stop()

    def on_event(self, event: Any) -> None:
        if event.kind == "started":
            self.running[event.uid] = time.perf_counter()
        elif event.kind in _DONE:
            self.running.pop(event.uid, None)
            self.done += 1
            self.hits += event.kind == "hit"
            if event.kind == "failed":
                self.console.print(f"[red]failed[/red] {event.uid}: {event.error}")
        now = ", ".join(self.running) if self.running else ""
        self.progress.update(
            self.task, completed=self.done, hits=self.hits, running=f"running: {now}" if now else ""
        )


def make_progress(total: int, quiet: bool = False) -> PlainProgress:
    if not quiet and sys.stderr.isatty():
        return RichProgress(total)
    return PlainProgress(total, quiet=quiet)


def print_table(
    title: str, header: list[str], rows: list[list[str]], status_column: int = 2
) -> None:
    """A table on stdout: rich when stdout is a terminal, aligned plain text otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for name in header:
            table.add_column(name)
        for row in rows:
            style = {"failed": "red", "hit": "green"}.get(row[status_column].split(":")[0])
            table.add_row(*row, style=style)
        Console().print(table)
        return
    print(title)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
