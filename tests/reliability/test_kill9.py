"""kill -9 at random moments of serial, threads and processes runs (issue 12, reliability suite).

A child process runs ``crash_pipeline`` (15 nodes, ~14 MiB of arrays: object writes, a streamed
16-chunk array, record commits and batched-record windows, the manifest); the parent SIGKILLs
its whole process group (runner, forkserver, workers) after a delay drawn from a seeded RNG
between 0 and the measured duration of a full run. After each kill:

- ``verify(quarantine=False)`` finds nothing wrong;
- every stored record's values equal ``crash_truth`` (plain numpy), and the records form a
  prefix of the run (a committed node's upstream nodes are committed too), each of a node whose
  stage really finished (execution log);
- a re-run executes exactly the nodes without a record (the others are reused), ends with every
  node hit or computed and every value right through ``res[...]`` and the run manifest.

Odd trials use the SQLite record layout, even ones the files layout. The delays reproduce
(seeded); where they land depends on the machine's speed, which is why each trial is checked
for every possible landing point rather than for one.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import physflow as pf

from . import crash_stages as S
from . import crash_truth as T
from .counts import record

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.reliability.crash_worker"


def _child(root: Path, trial: int, executor: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", WORKER, "run", str(root), str(trial), executor],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), S.LOG_ENV: str(log)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches forkserver + workers
    )


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"child did not start: {line!r} {proc.communicate()[1]}")


def _kill(proc: subprocess.Popen) -> str:
    """SIGKILL the child's whole process group, reap the child and wait until no process of
    the group is left (no late writer); returns the child's stdout."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return out
        time.sleep(0.01)
    raise AssertionError(f"process group {proc.pid} survived SIGKILL")


def _wait_first_stage(proc: subprocess.Popen, log: Path) -> float:
    """Wait until the first stage starts (the log appears): the kill window opens there."""
    deadline = time.monotonic() + 120
    while not log.exists() and proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError("no stage started within 120 s")
        time.sleep(0.001)
    return time.monotonic()


def _calibrate(tmp: Path, executor: str) -> float:
    """Seconds from the first stage's start to the end of a full cold run, in a child."""
    log = tmp / "calibration.log"
    proc = _child(tmp / "calibration", 99, executor, log)
    _wait_ready(proc)
    start = _wait_first_stage(proc, log)
    line = proc.stdout.readline()  # printed as soon as the run returns
    elapsed = time.monotonic() - start
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and line.strip() == "finished", err
    return elapsed


def _log_tags(log: Path, event: str) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.partition(":")[2] for line in lines if line.startswith(event + ":")]


def _stored_values(store: pf.Store) -> dict[str, dict]:
    """Every readable record's values, by key (read before the re-run can touch anything)."""
    values = {}
    for key in store.actions.list_keys():
        rec = store.get_action(key)
        if rec is not None:
            values[key] = {name: store.get_value(e) for name, e in rec.outputs.items()}
    return values


def _ref(uid: str, output: str) -> str:
    return uid if output == "value" else f"{uid}.{output}"


def _check_after_kill(root: Path, trial: int, log: Path, monkeypatch) -> dict[str, int]:
    store = pf.Store(root)
    report = store.verify(quarantine=False)
    assert report.ok, f"trial {trial}: {report}"
    finished = set(_log_tags(log, "done"))
    stored = _stored_values(store)
    rerun_log = log.with_suffix(".rerun")
    monkeypatch.setenv(S.LOG_ENV, str(rerun_log))
    p = S.crash_pipeline(trial)
    res = p.run(store=store)
    assert res.ok and set(res.hits) | set(res.misses) == set(p.nodes), res.errors
    keys = {uid: state.key for uid, state in res.outcome.states.items()}
    expected = T.crash_values(trial)
    committed = {uid for uid, key in keys.items() if key in stored}
    for uid in committed:
        for output, value in stored[keys[uid]].items():
            assert T.same(value, expected[_ref(uid, output)]), f"trial {trial}: stored {uid}"
        upstream = {ref.node for ref in p.nodes[uid].inputs.values()}
        assert upstream <= committed, f"trial {trial}: {uid} committed before {upstream}"
    assert committed <= finished, f"trial {trial}: records of nodes that never finished"
    assert sorted(_log_tags(rerun_log, "start")) == sorted(set(p.nodes) - committed)
    assert sorted(res.hits) == sorted(committed)
    manifest = pf.load_manifest(res.manifest_path)
    for ref, value in expected.items():
        assert T.same(res[ref], value), f"trial {trial}: res[{ref!r}]"
        assert T.same(manifest.open(ref), value), f"trial {trial}: manifest {ref}"
    assert store.verify().ok
    checked = sum(len(stored[keys[uid]]) for uid in committed) + 2 * len(expected)
    return {
        "finished": len(finished),
        "committed": len(committed),
        "reran": len(p.nodes) - len(committed),
        "values_checked": checked,
    }


def _trials(executor: str, count: int, tmp_path: Path, monkeypatch) -> None:
    duration = _calibrate(tmp_path, executor)
    rng = random.Random(f"kill9-{executor}")
    partial = mid_run = tmp_left = checked = reused = 0
    for i in range(count):
        trial = i + 1
        root, log = tmp_path / f"store{trial}", tmp_path / f"run{trial}.log"
        pf.Store(root, actions="files" if trial % 2 == 0 else "sqlite")  # both layouts
        proc = _child(root, trial, executor, log)
        _wait_ready(proc)
        _wait_first_stage(proc, log)
        time.sleep(rng.uniform(0.0, duration))
        out = _kill(proc)
        mid_run += "finished" not in out
        tmp_left += bool(list((root / "tmp").iterdir())) if (root / "tmp").is_dir() else 0
        figures = _check_after_kill(root, trial, log, monkeypatch)
        partial += 0 < figures["committed"] < 15
        checked += figures["values_checked"]
        reused += figures["committed"]
        print(executor, trial, figures)
    record(f"kill9 {executor}", trials=count, killed_mid_run=mid_run, partial=partial)
    record(f"kill9 {executor}", leftover_tmp=tmp_left, nodes_reused=reused, values_checked=checked)
    print(
        f"{executor}: {duration:.3f} s per run, {count} kills, {mid_run} mid-run, "
        f"{partial} with partial progress"
    )


@pytest.mark.slow
@pytest.mark.parametrize(("executor", "count"), [("serial", 8), ("threads", 6), ("processes", 6)])
def test_kill9_at_random_moments(executor, count, tmp_path, monkeypatch):
    _trials(executor, count, tmp_path, monkeypatch)
