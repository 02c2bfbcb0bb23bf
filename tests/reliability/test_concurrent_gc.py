"""Four processes run overlapping pipelines on one store while a fifth runs an aggressive gc in
a loop (issue 12, reliability suite).

Each worker runs pipelines drawn from a seeded RNG (three of six shared random arrays, one of
three scale factors, serial or threads), checks every value it gets back against
``crash_truth`` (plain numpy) and reports. The gc process calls ``store.gc(max_bytes=256 KiB,
keep_manifests=0, tmp_grace_s=0)`` until told to stop, so records and objects vanish between
planning and reading, under running nodes and right after runs. Required: 0 wrong values,
``verify()`` clean afterwards, 0 failed nodes; on both record layouts.

A value that gc removed after its run returned, and before the worker read it, is a
``MissingObjectError`` ("gone"), counted apart: it is never a wrong value. Any failed node or
other read error fails this test, except kinds listed in ``KNOWN`` (open bugs, reproduced in
test_found_bugs.py; none at present).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import physflow as pf

from . import crash_stages as S
from . import crash_truth as T
from .counts import record

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.reliability.crash_worker"
WORKERS, RUNS, SEED = 4, 12, 1212
MAX_BYTES = 256 * 1024

#: failure / read-error kinds of known, open bugs -> the test in test_found_bugs.py reproducing
#: each (none open: the eleven this scenario found are fixed, in c97c930 and e0bf661).
KNOWN: dict[str, str] = {}


def _known(message: str) -> str | None:
    return next((test for pattern, test in KNOWN.items() if re.search(pattern, message)), None)


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", WORKER, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _summary(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{what} exited with {proc.returncode}:\n{err}"
    return json.loads(out.strip().splitlines()[-1])


def _scenario(root: Path, tmp: Path, layout: str) -> tuple[list[dict], dict]:
    go, stop = tmp / "go", tmp / "stop"
    pf.Store(root, actions=layout)  # stamp the layout before anyone opens it
    gc_proc = _spawn("gc", str(root), str(stop), str(MAX_BYTES), "0")
    workers = [
        _spawn("overlap", str(root), str(w), str(RUNS), str(SEED), str(go)) for w in range(WORKERS)
    ]
    go.touch()
    try:
        summaries = [_summary(proc, f"worker {w}") for w, proc in enumerate(workers)]
    finally:
        stop.touch()
    return summaries, _summary(gc_proc, "gc")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["sqlite", "files"])
def test_four_writers_and_an_aggressive_gc(tmp_path, layout):
    root = tmp_path / "store"
    summaries, gc_summary = _scenario(root, tmp_path, layout)
    wrong = [x for s in summaries for x in s["wrong"]]
    assert wrong == [], wrong
    problems = [x for s in summaries for x in s["failed"] + s["read_errors"] + s["gone_as_corrupt"]]
    problems += gc_summary["errors"]
    unknown = [x for x in problems if _known(x) is None]
    assert unknown == [], unknown
    assert sum(s["runs"] for s in summaries) == WORKERS * RUNS
    assert gc_summary["objects"] > 0  # gc really removed work while the writers ran
    report = pf.Store(root).verify(quarantine=False)
    assert report.ok, str(report)
    # what is left is right: pipelines re-run to correct values and all nodes ok
    for seeds, factor in [((0, 1, 2), 0.5), ((3, 4, 5), 3.0)]:
        res = S.overlap_pipeline(seeds, factor).run(store=root)
        assert res.ok, res.errors
        for ref, value in T.overlap_values(seeds, factor).items():
            assert T.same(res[ref], value), ref
    totals = {k: sum(s[k] for s in summaries) for k in ("runs", "checked", "gone", "misses")}
    failed = sum(len(s["failed"]) for s in summaries)
    known = {test: sum(_known(x) == test for x in problems) for test in KNOWN.values()}
    record(f"concurrent gc ({layout})", **totals, wrong=len(wrong), failed_nodes=failed)
    record(f"concurrent gc ({layout})", gc_passes=gc_summary["passes"])
    record(f"concurrent gc ({layout})", gc_objects_removed=gc_summary["objects"])
    record(f"concurrent gc ({layout}) known-bug hits", **known)
    print(layout, totals, gc_summary, known)
