"""Which computed values stay in memory, and for how long, during one run.

Executors that share the scheduler's process (serial, threads) hand a consumer its inputs as
the producer's objects themselves, not re-read from the store. A value is kept while some
consumer still has to run and dropped after the last one, so a long pipeline does not hold
every intermediate. A node that runs again (its input was recomputed after a gc removed it)
consumes its inputs again: :meth:`reacquire` counts it back in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.records import OutputEntry


class MemoryLedger:
    """Values by content digest, each kept while a consumer of its producer is still to run."""

    def __init__(self, consumers: Mapping[str, int], keep_all: bool = False) -> None:
        self.values: dict[str, Any] = {}  # content digest -> value
        self.keep_all = keep_all
        self._consumers_left = dict(consumers)  # producer uid -> consumers still to finish
        self._refs: dict[str, int] = defaultdict(int)  # digest -> producers holding it
        self._released: set[str] = set()  # consumers that gave their inputs back

    def wanted(self, uid: str) -> bool:
        """Whether values ``uid`` produces are worth keeping (someone will read them)."""
        return self.keep_all or self._consumers_left[uid] > 0

    def hold(self, outputs: Mapping[str, OutputEntry], values: Mapping[str, Any]) -> None:
        for name, entry in outputs.items():
            self.values[entry.digest] = values[name]
            self._refs[entry.digest] += 1

    def release(
        self,
        uid: str,
        upstream: Iterable[str],
        outputs_of: Callable[[str], Mapping[str, OutputEntry] | None],
    ) -> None:
        """``uid`` finished: its producers lose a consumer; values nobody needs are dropped."""
        if self.keep_all or uid in self._released:
            return
        self._released.add(uid)
        for up in upstream:
            self._consumers_left[up] -= 1
            if self._consumers_left[up] == 0 and self.values:
                for entry in (outputs_of(up) or {}).values():
                    self._refs[entry.digest] -= 1
                    if self._refs[entry.digest] <= 0:
                        self.values.pop(entry.digest, None)

    def reacquire(self, uid: str, upstream: Iterable[str]) -> None:
        """``uid`` will run again: it counts as a consumer of its producers once more."""
        if uid in self._released:
            self._released.discard(uid)
            for up in upstream:
                self._consumers_left[up] += 1
