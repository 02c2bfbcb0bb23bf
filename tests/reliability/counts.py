"""The figures of docs/reliability.md: how many cases each scenario tried, and what happened.

Tests call :func:`record`; when ``$PHYSFLOW_RELIABILITY_COUNTS`` names a file, each call appends
one JSON line there. ``python -m tests.reliability.counts`` runs the whole reliability suite
with that variable set and prints the summed counts per scenario (and the pytest outcome).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

COUNTS_ENV = "PHYSFLOW_RELIABILITY_COUNTS"
ROOT = Path(__file__).resolve().parents[2]


def record(scenario: str, **counts: int) -> None:
    """Add ``counts`` to ``scenario``'s figures (a no-op unless the suite is run for them)."""
    path = os.environ.get(COUNTS_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"scenario": scenario, **counts}) + "\n")


def summarise(lines: list[str]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in lines:
        row = json.loads(line)
        scenario = row.pop("scenario")
        for name, value in row.items():
            totals[scenario][name] += value
    return {k: dict(v) for k, v in sorted(totals.items())}


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp) / "counts.jsonl"
        counts.touch()
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests/reliability"]
        start = time.monotonic()
        proc = subprocess.run(
            [*cmd, *argv], cwd=ROOT, env={**os.environ, COUNTS_ENV: str(counts)}, check=False
        )
        elapsed = time.monotonic() - start
        for scenario, figures in summarise(counts.read_text().splitlines()).items():
            print(f"{scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(f"pytest exit code {proc.returncode}; {elapsed:.0f} s for tests/reliability")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
