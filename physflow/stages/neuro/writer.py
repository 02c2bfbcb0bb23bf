"""Write streamed chunks from a background thread, so compression and hashing overlap compute.

``OutputArray.write_chunk`` compresses (zstd) and hashes (blake3) the chunk before it returns;
both release the GIL, so on a second core they can run while the next chunk is decoded. At
most ``depth`` chunks wait in the queue (memory: ``depth`` extra chunks). Chunks are written in
the order they are put, by one thread; an error in the writer is raised in the stage.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import Any


class BackgroundWriter:
    """``with BackgroundWriter() as w: w.put(out, index, block)``; all written on exit."""

    def __init__(self, depth: int = 1) -> None:
        self._queue: queue.Queue[tuple[Any, tuple[int, ...], Any] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="neuro-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                out, index, block = item
                try:
                    out.write_chunk(index, block)
                except BaseException as exc:  # re-raised by put() or close()
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, out: Any, index: tuple[int, ...], block: Any) -> None:
        """Queue ``block`` as chunk ``index`` of ``out`` (blocks while ``depth`` are waiting)."""
        self._check()
        self._queue.put((out, index, block))

    def close(self) -> None:
        """Wait until every queued chunk is written; raise the writer's error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._check()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # the stage failed: stop the writer, keep the stage's own error
            self._error = self._error or exc
            self._queue.put(None)
            self._thread.join()
