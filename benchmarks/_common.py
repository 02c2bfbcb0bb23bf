"""Shared helpers for benchmarks: timing, repetition and JSON output."""

from __future__ import annotations

import atexit
import gc
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"

# Scratch stores live beside the project, like the default store ./.physflow, not in /tmp: on the
# machines here /tmp creates small files up to ten times slower than the project's disk, which
# would measure the disk rather than the tools. Every tool in a benchmark uses the same place.
# Temporary files of one benchmark process go to its own directory there, removed at exit (peer
# virtualenvs kept in SCRATCH_DIR itself survive, so they are built once).
SCRATCH_DIR = Path(__file__).parent / ".scratch"
SCRATCH_DIR.mkdir(exist_ok=True)
RUN_SCRATCH = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=SCRATCH_DIR))
tempfile.tempdir = str(RUN_SCRATCH)
_OWNER_PID = os.getpid()


@atexit.register
def _remove_run_scratch() -> None:
    """Only the process that made it removes it (a forked child shares the atexit list)."""
    if os.getpid() == _OWNER_PID:
        shutil.rmtree(RUN_SCRATCH, ignore_errors=True)


def best_of(
    fn: Callable[[], Any], repeat: int = 3, setup: Callable[[], Any] | None = None
) -> float:
    """Minimum wall time of ``fn`` over ``repeat`` runs (each after ``setup``), in seconds.

    Garbage from earlier runs is collected before each timed run, for every tool alike, so a
    cyclic-GC pass triggered by someone else's garbage does not land inside the measurement.
    """
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "results": results,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
