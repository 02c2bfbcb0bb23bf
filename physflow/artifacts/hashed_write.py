"""Writing a large buffer to a local file while blake3 hashes it in a helper thread, so storing
costs about one write rather than a write plus a hash (used by local sinks and array writers)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

#: Large buffers are written in pieces of this size, each hashed in a helper thread while the
#: next one is written, so storing costs about one write rather than a write plus a hash.
PIECE_BYTES = 1 << 20
_POOL: Any = None


def _hash_pool() -> Any:
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(2, thread_name_prefix="physflow-hash")
    return _POOL


def _reset_pool() -> None:  # a forked child must not reuse the parent's threads
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_reset_pool)


def update_all(hashers: list[Any], piece: memoryview) -> None:
    for hasher in hashers:
        hasher.update(piece)


def _preallocate(fh: Any, n: int) -> None:
    """Reserve the file's blocks in one go (as ``ndarray.tofile`` does): ~30% faster writes."""
    if n >= (1 << 20) and hasattr(os, "posix_fallocate"):
        with contextlib.suppress(OSError):  # unsupported here: plain writes still work
            os.posix_fallocate(fh.fileno(), 0, n)


def _write_all(fh: Any, view: memoryview) -> None:
    written = 0
    while written < view.nbytes:
        written += fh.write(view[written:])


def write_hashed(path: str, data: Any, hashers: list[Any]) -> None:
    """Write ``data`` to ``path`` and feed the same bytes to every blake3 ``hashers``.

    Large buffers are written in pieces while a helper thread hashes everything written so far;
    once the writer is done, whatever is left is hashed in one call (multithreaded for hashers
    made with ``max_threads=AUTO``). Storing then costs about max(write, hash), not their sum.
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    n = view.nbytes
    if n < 4 * PIECE_BYTES or not hashers:
        with open(path, "wb", buffering=0) as fh:
            _preallocate(fh, n)
            _write_all(fh, view)
        update_all(hashers, view)
        return
    cond = threading.Condition()
    progress = {"written": 0, "done": False}

    def hash_behind() -> None:
        hashed = 0
        while True:
            with cond:
                while progress["written"] == hashed and not progress["done"]:
                    cond.wait()
                upto = progress["written"]
                if upto == hashed:
                    return
            update_all(hashers, view[hashed:upto])
            hashed = upto

    future = _hash_pool().submit(hash_behind)
    try:
        with open(path, "wb", buffering=0) as fh:
            _preallocate(fh, n)
            for start in range(0, n, PIECE_BYTES):
                piece = view[start : start + PIECE_BYTES]
                _write_all(fh, piece)
                with cond:
                    progress["written"] = start + piece.nbytes
                    cond.notify()
    finally:
        with cond:
            progress["done"] = True
            cond.notify()
        future.result()
