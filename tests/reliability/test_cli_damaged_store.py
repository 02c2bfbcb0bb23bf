"""The real ``physflow`` command on damaged stores (issue 12, reliability suite): whatever is
damaged, ``run``, ``show`` and ``cache verify`` exit 0, 1 or 2 with at most a short message and
never a traceback; a run's printed result is the true value (the corruption matrix checks the
same paths in-process, with many more damages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from . import crash_truth as T

ROOT = Path(__file__).resolve().parents[2]
PHYSFLOW = str(Path(sys.executable).with_name("physflow"))
SPEC = """\
name: cli-damage
seed: 0
stages:
  g: {stage: "tests.reliability.crash_stages:gen", config: {tag: g, seed: 3, n: 65536}}
  t: {stage: "tests.reliability.crash_stages:total", config: {tag: t}, inputs: {x: g}}
"""


def _physflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PHYSFLOW, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _chunk(root: Path) -> Path:
    return max((p for p in (root / "objects").rglob("c/0")), key=lambda p: p.stat().st_size)


DAMAGES = {
    "database overwritten": lambda root: (root / "actions.sqlite").write_bytes(b"\x07" * 9000),
    "database emptied": lambda root: (root / "actions.sqlite").write_bytes(b""),
    "chunk flipped": lambda root: _chunk(root).write_bytes(b"\x01" + _chunk(root).read_bytes()[1:]),
    "manifest truncated": lambda root: [
        m.write_bytes(m.read_bytes()[:100]) for m in (root / "manifests").glob("*.json")
    ],
    "layout stamp damaged": lambda root: (root / "store.json").write_text('{"format": 1, "ac'),
}


#: physflow's store errors: printed in one line (exit 1) with a PHYSFLOW_DEBUG hint, and clear
STORE_ERRORS = ("StoreError", "CorruptObjectError", "MissingObjectError")


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_the_cli_on_a_damaged_store(tmp_path, damage):
    if not Path(PHYSFLOW).exists():
        pytest.skip("the physflow console script is not installed next to this python")
    spec, root = tmp_path / "spec.yaml", tmp_path / "store"
    spec.write_text(SPEC)
    assert _physflow("run", str(spec), "--store", str(root), "-q", cwd=tmp_path).returncode == 0
    for suffix in ("-wal", "-shm"):  # the database between runs: checkpointed, closed
        assert not (root / f"actions.sqlite{suffix}").exists()
    DAMAGES[damage](root)
    expected = f"{float(np.sum(T.overlap_values((3,), 1.0)['g3'])):.6g}"
    for args in (["cache", "verify"], ["show", "latest"], ["run", str(spec), "-q"]):
        done = _physflow(*args, "--store", str(root), cwd=tmp_path)
        err = done.stderr
        assert "Traceback" not in err + done.stdout, f"{damage}: {args}: {err}"
        assert done.returncode in (0, 1, 2), f"{damage}: {args} exited {done.returncode}: {err}"
        errors = [line for line in err.splitlines() if "error" in line.lower()]
        assert len(errors) <= 1, f"{damage}: {args}: {err}"
        store_error = any(f"error: {name}:" in err for name in STORE_ERRORS)
        assert "PHYSFLOW_DEBUG" not in err or store_error, f"{damage}: {args}: {err}"
        if args[0] == "run":  # a damaged store is recomputed; only a bad stamp stops it
            assert done.returncode == (1 if "stamp" in damage else 0), f"{damage}: {err}"
        if args[0] == "run" and done.returncode == 0:
            show = _physflow("show", "latest", "--store", str(root), cwd=tmp_path).stdout
            assert expected in show, f"{damage}: the re-run shows {show}"
    shutil.rmtree(root)
