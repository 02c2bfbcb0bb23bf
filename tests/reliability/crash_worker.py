"""Child processes of the reliability suite (``python -m tests.reliability.crash_worker``).

``run STORE TRIAL EXECUTOR``: print ``ready``, run ``crash_pipeline(TRIAL)`` on STORE with
EXECUTOR, print ``finished`` (the parent SIGKILLs it at a random moment in between).

``overlap STORE WORKER RUNS SEED GO``: wait for the file GO, then run RUNS overlapping pipelines
(seeds and factors drawn from ``Random(SEED + WORKER)``), check every value against
:mod:`.crash_truth` and print a JSON summary (runs, values checked, wrong values, failed nodes,
values gone before they could be read).

``gc STORE STOP MAX_BYTES GRACE``: run ``store.gc(max_bytes=MAX_BYTES, keep_manifests=0,
tmp_grace_s=GRACE)`` in a loop until the file STOP exists; print a JSON summary.

``build STORE LAYOUT``: build the corruption suite's pristine store and exit (so the SQLite
database is checkpointed and closed, as it is between runs).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

import physflow as pf

from . import crash_stages as S
from . import crash_truth as T


def run(root: str, trial: int, executor: str) -> None:
    store = pf.Store(root)
    p = S.crash_pipeline(trial)
    print("ready", flush=True)
    p.run(store=store, executor=executor).raise_on_failure()
    print("finished", flush=True)


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"start signal {path} never came")
        time.sleep(0.002)


def _check(summary: dict, res: pf.RunResult, ref: str, expected: object, name: str) -> None:
    try:
        value = res[ref]
    except pf.MissingObjectError:
        summary["gone"] += 1  # gc removed a hit's object after the run: not wrong
        return
    except pf.CorruptObjectError as exc:  # nobody corrupts bytes here: gc's removal
        summary["gone_as_corrupt"].append(str(exc))
        return
    except Exception as exc:  # any other error is a finding
        summary["read_errors"].append(f"{type(exc).__name__}: {exc}")
        return
    summary["checked"] += 1
    if not T.same(value, expected):
        summary["wrong"].append(f"{name}:{ref}")


def overlap(root: str, worker: int, runs: int, seed: int, go: str) -> None:
    rng = random.Random(seed + worker)
    store = pf.Store(root)
    summary = {"runs": 0, "checked": 0, "wrong": [], "failed": [], "misses": 0}
    summary |= {"gone": 0, "gone_as_corrupt": [], "read_errors": []}
    _wait_for(go)
    for _ in range(runs):
        seeds = tuple(sorted(rng.sample(range(6), 3)))  # 6 shared random arrays in all
        factor = rng.choice([0.5, 1.5, 3.0])
        p = S.overlap_pipeline(seeds, factor)
        res = p.run(store=store, executor=rng.choice(["serial", "threads"]))
        summary["runs"] += 1
        summary["misses"] += len(res.misses)
        summary["failed"] += [
            f"{uid}: {err} | {res.tracebacks[uid].strip().splitlines()[-1:]}"
            for uid, err in res.errors.items()
        ]
        for ref, expected in T.overlap_values(seeds, factor).items():
            if ref.partition(".")[0] not in res.failed + res.skipped:
                _check(summary, res, ref, expected, p.name)
    print(json.dumps(summary), flush=True)


def gc_loop(root: str, stop: str, max_bytes: int, grace: float) -> None:
    store = pf.Store(root)
    summary = {"passes": 0, "records": 0, "objects": 0, "tmp": 0, "errors": []}
    while not os.path.exists(stop):
        summary["passes"] += 1
        try:
            report = store.gc(max_bytes=max_bytes, keep_manifests=0, tmp_grace_s=grace)
        except Exception as exc:  # a finding: gc must survive concurrent writers
            summary["errors"].append(f"gc: {type(exc).__name__}: {exc}")
            continue
        summary["records"] += len(report.removed_actions)
        summary["objects"] += len(report.removed_objects)
        summary["tmp"] += len(report.removed_tmp)
    print(json.dumps(summary), flush=True)


def build(root: str, layout: str) -> None:
    """The corruption suite's store: one run and one scan of ``corruption_pipeline``."""
    from .corruption_cases import build_pristine

    build_pristine(root, layout)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "run":
        run(args[0], int(args[1]), args[2])
    elif mode == "overlap":
        overlap(args[0], int(args[1]), int(args[2]), int(args[3]), args[4])
    elif mode == "gc":
        gc_loop(args[0], args[1], int(args[2]), float(args[3]))
    elif mode == "build":
        build(args[0], args[1])
    else:
        raise SystemExit(f"unknown mode {mode}")
