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


class PointProgress(PlainProgress):
    """Plain progress for scans: one line per finished *point*, not per node, so a 26-point
    scan logs 26 lines (``[3/26] ok      noisy.sigma=0.1  (3 nodes, 1 hit)``).

    ``point_uids[i]`` maps point ``i``'s node ids to plan uids; a uid shared by several points
    (work done once) counts for each of them.
    """

    def __init__(
        self,
        point_uids: list[dict[str, str]],
        labels: list[str],
        stream: Any = None,
        quiet: bool = False,
    ) -> None:
        super().__init__(len(point_uids), stream, quiet)
        self.labels = labels
        self.members = [set(uids.values()) for uids in point_uids]
        self.waiting = [set(m) for m in self.members]
        self.points_of: dict[str, list[int]] = {}
        for i, uids in enumerate(point_uids):
            for uid in set(uids.values()):
                self.points_of.setdefault(uid, []).append(i)
        self.kinds: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def on_event(self, event: Any) -> None:
        if event.kind not in _DONE or event.uid in self.kinds:
            return
        self.kinds[event.uid] = event.kind
        if event.error:
            self.errors[event.uid] = event.error
        for i in self.points_of.get(event.uid, ()):
            self.waiting[i].discard(event.uid)
            if not self.waiting[i]:
                self._point_done(i)

    def _point_done(self, i: int) -> None:
        self.done += 1
        uids = sorted(self.members[i])
        kinds = [self.kinds[u] for u in uids]
        failed = [u for u in uids if self.kinds[u] == "failed"]
        status = "failed" if failed else "skipped" if "skipped" in kinds else "ok"
        hits = kinds.count("hit")
        detail = f"  ({len(kinds)} nodes, {hits} hit{'s' * (hits != 1)})"
        if failed:
            error = self.errors.get(failed[0], "").splitlines()[0:1]
            detail = f"  node {failed[0].partition('/')[2] or failed[0]}: {''.join(error)}"
        if self.quiet:
            return
        print(
            f"[{self.done}/{self.total}] {status:<7} {self.labels[i]}{detail}",
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


def scan_progress(plan: Any, points: Any, quiet: bool = False) -> PlainProgress:
    """A rich bar over the scan's nodes on a terminal; otherwise one line per finished point."""
    if not quiet and sys.stderr.isatty():
        return RichProgress(len(plan.nodes))
    labels = [
        ", ".join(f"{k}={_short(v)}" for k, v in points.point_values(i).items())
        for i in range(len(points))
    ]
    return PointProgress(plan.point_uids, labels, quiet=quiet)


def _short(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 24 else text[:21] + "..."


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
