"""Claims in real runs: two processes reach the same missing key at once; one computes, the
other waits and reports a hit (Store(..., claims=ttl))."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])

WORKER = """
import json, sys, time
from pathlib import Path
import physflow as pf
from tests.artifacts.claim_stages import Slow, slow_square

root, log, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
p = pf.Pipeline("claimed")
p.add("s", slow_square, Slow(log=log, seconds=1.5))
while not go.exists():
    time.sleep(0.005)
res = p.run(store=pf.Store(root, claims=60.0))
print(json.dumps({"hits": res.hits, "misses": res.misses, "value": res["s"]}))
"""


def test_two_processes_one_computes_the_other_hits(tmp_path):
    root, log, go = tmp_path / "store", tmp_path / "runs.log", tmp_path / "go"
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    import physflow as pf

    pf.Store(root)  # created once, before the race
    env = {**os.environ, "PYTHONPATH": REPO}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(log), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    time.sleep(1.0)  # both imported and waiting
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert len(log.read_text().splitlines()) == 1  # computed exactly once
    assert sorted(len(o["misses"]) for o in outs) == [0, 1]
    assert all(o["value"] == 49.0 for o in outs)
