"""Manifests stay valid with NaN and infinite results, and a manifest that cannot be written
(disk full) is one line naming the store, not a traceback (issue 12, item 9)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import physflow as pf
from physflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"


@pf.stage(version="1", outputs=["a", "b", "stats"])
def nonfinite() -> dict:
    return {
        "a": float("nan"),
        "b": np.float64("inf"),
        "stats": {"low": float("-inf"), "ok": 1.5, "nan": np.float32("nan")},
    }


@pf.stage(version="1")
def lone_nan() -> float:
    return float("nan")


def test_nan_and_inf_metrics_make_a_valid_manifest(tmp_path, capsys):
    p = pf.Pipeline("nonfinite")
    p.add("w", nonfinite)
    p.add("s", lone_nan)
    result = p.run(store=tmp_path / "store")  # decoding its own manifest used to fail
    assert result.ok
    m = pf.load_manifest(result.manifest_path)
    metrics = m.metrics()
    assert math.isnan(metrics["w.a"]) and metrics["w.b"] == math.inf
    assert metrics["w.stats.low"] == -math.inf and metrics["w.stats.ok"] == 1.5
    assert math.isnan(metrics["w.stats.nan"]) and math.isnan(metrics["s.value"])
    assert math.isnan(m.open("s")) and m.outputs("s")["value"].value is None
    raw = json.loads(Path(result.manifest_path).read_text())  # strict JSON: no NaN tokens
    w = next(n for n in raw["nodes"] if n["id"] == "w")
    assert w["metrics"]["a"] == "nan" and w["metrics"]["b"] == "inf"
    jsonschema.validate(raw, json.loads(_schema(capsys)))
    assert main(["show", "latest", "--store", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert "a=nan, b=inf" in out and " nan" in out.splitlines()[-2]


def _schema(capsys) -> str:
    capsys.readouterr()
    assert main(["manifest-schema"]) == 0
    return capsys.readouterr().out


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount rights; skipped elsewhere), unmounted afterwards."""
    mount = shutil.which("mount")
    where = tmp_path / "small"
    where.mkdir()
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_full_disk_is_one_line_naming_the_store(full_disk):
    store = full_disk / "store"
    pf.Store(store, actions="files")  # records as files: the manifest is what fails to fit
    args = [sys.executable, "-m", "physflow.cli", "run", str(DEMO), "--store", str(store), "-q"]
    args += ["--set", "tone.n_samples=256"]
    assert subprocess.run(args, capture_output=True).returncode == 0
    with open(full_disk / "ballast", "wb") as fh:  # fill the disk
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("physflow: error: cannot write the manifest")
    assert str(store / "manifests") in lines[0] and "No space left on device" in lines[0]
