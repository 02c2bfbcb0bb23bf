"""Generation progress: a rich bar with samples/s on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Counts samples (computed and reused) and shards; subclasses display them."""

    def __init__(self, total: int, shards: int) -> None:
        self.total, self.shards = total, shards
        self.done = self.computed = self.shards_done = self.reused = 0
        self.t0 = time.perf_counter()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t0
        return self.computed / elapsed if elapsed > 0 else 0.0

    def sample(self) -> None:
        """One sample computed in this process (serial generation)."""
        self.done += 1
        self.computed += 1
        self.refresh()

    def shard(self, result: Any, counted: int = 0) -> None:
        """A shard finished; ``counted`` of its samples were already reported by :meth:`sample`."""
        n = result.info.stop - result.info.start
        self.shards_done += 1
        self.reused += result.reused
        self.done += n - counted
        self.computed += result.computed - counted
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        pass


class PlainProgress(Progress):
    """One line per shard on stderr."""

    def __init__(self, total: int, shards: int, stream: Any = None) -> None:
        super().__init__(total, shards)
        self.stream = stream or sys.stderr

    def shard(self, result: Any, counted: int = 0) -> None:
        super().shard(result, counted)
        info = result.info
        how = "reused" if result.reused else f"computed {result.computed}"
        print(
            f"[{self.shards_done}/{self.shards}] shard {info.start}:{info.stop} {how}  "
            f"{self.done}/{self.total} samples, {self.rate:.0f} samples/s",
            file=self.stream,
            flush=True,
        )


class RichProgress(Progress):
    """samples done/total, samples/s, shards (reused), elapsed and remaining time."""

    def __init__(self, total: int, shards: int) -> None:
        super().__init__(total, shards)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("[bold]samples"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} samples/s"),
            TextColumn("shards {task.fields[shards]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task("generate", total=total, rate="-", shards="")
        self.last = 0.0

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.refresh(force=True)
        self.bar.stop()

    def refresh(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        shards = f"{self.shards_done}/{self.shards} ({self.reused} reused)"
        self.bar.update(self.task, completed=self.done, rate=f"{self.rate:.0f}", shards=shards)


class CallbackProgress(Progress):
    """Calls ``fn(done, total)`` after every shard."""

    def __init__(self, total: int, shards: int, fn: Any) -> None:
        super().__init__(total, shards)
        self.fn = fn

    def shard(self, result: Any, counted: int = 0) -> None:
        super().shard(result, counted)
        self.fn(self.done, self.total)


def make(progress: Any, total: int, shards: int) -> Progress:
    """``None``: a bar on a terminal, else nothing; ``True``: bar or lines; ``False``: nothing;
    ``"plain"``: lines; a callable: ``fn(done, total)`` per shard."""
    if callable(progress):
        return CallbackProgress(total, shards, progress)
    tty = sys.stderr.isatty()
    if progress == "plain" or (progress is True and not tty):
        return PlainProgress(total, shards)
    if progress is True or (progress is None and tty):
        return RichProgress(total, shards)
    return Progress(total, shards)
