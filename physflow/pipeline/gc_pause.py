"""Deferring the cyclic garbage collector through bookkeeping phases of a run."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Planning a run or scan, and turning its outcome into a manifest, allocates many small
    long-lived objects; each full collection they trigger walks every object in the process
    (tens of ms with xarray/dask loaded, several times per large run). Collection is deferred
    to the end of these phases (they make no cycles). Never used around stage code."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
