"""``physflow explain`` and ``physflow run --explain``: the reason a node ran again, for every
cause the cache key can have (config, input, code, seed) and for results that were gone
(evicted by gc, corrupt), each produced for real and read back from the manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from physflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"

MODULE = """\
import numpy as np
import physflow as pf


def helper(x):
    return x * {scale}


class WaveConfig(pf.Config):
    freq_hz: float = 5.0
    n: int = 64


@pf.stage(version="{version}", deps=[helper])
def wave(cfg: WaveConfig) -> np.ndarray:
    t = np.arange(cfg.n) / cfg.n
    return helper(np.sin(2 * np.pi * cfg.freq_hz * t)){extra}


@pf.stage(version="1")
def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))
"""

SPEC = """\
name: waves
stages:
  wave: {stage: "waves_mod:wave", config: {freq_hz: 3.0}}
  rms: {stage: "waves_mod:rms", inputs: {x: wave}}
"""


def physflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, so an edited stage module is imported anew (no .pyc: an
    edit within the same second and of the same size would look unchanged to Python)."""
    done = subprocess.run(
        [sys.executable, "-m", "physflow.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def why(done: subprocess.CompletedProcess) -> dict[str, str]:
    """{node: reason} from `physflow run --explain` output."""
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith("  why "):
            node, _, reason = line.removeprefix("  why ").partition(": ")
            found[node] = reason
    return found


@pytest.fixture
def project(tmp_path):
    def write(scale: str = "1.0", version: str = "1", extra: str = "") -> Path:
        text = MODULE.format(scale=scale, version=version, extra=extra)
        (tmp_path / "waves_mod.py").write_text(text)
        return tmp_path

    (tmp_path / "waves.yaml").write_text(SPEC)
    write()
    return write


def run(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    done = physflow("run", "waves.yaml", "--store", "st", "-q", "--explain", *extra, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done


def test_first_run_then_config_then_seedless_rerun(project):
    cwd = project()
    first = why(run(cwd))
    assert first == {n: "no earlier run of pipeline 'waves' in this store" for n in ("wave", "rms")}
    changed = why(run(cwd, "--set", "wave.freq_hz=4"))
    assert changed["wave"] == "config changed: freq_hz 3.0 -> 4.0"
    assert changed["rms"] == (
        "input 'x' changed because 'wave' changed (config changed: freq_hz 3.0 -> 4.0)"
    )
    assert why(run(cwd, "--set", "wave.freq_hz=4")) == {}  # all hits: nothing to explain


def test_code_changes_name_version_source_and_dependency(project):
    cwd = project()
    run(cwd)
    project(extra="  # a comment does not count")
    assert why(run(cwd)) == {}  # normalised source: comments and formatting are not code
    project(version="2")
    assert why(run(cwd))["wave"] == "stage code changed: version '1' -> '2'"
    project(version="2", scale="2.0")
    reasons = why(run(cwd))
    assert reasons["wave"] == "stage code changed: dependency waves_mod:helper changed"
    assert "input 'x' changed because 'wave' changed" in reasons["rms"]
    project(version="2", scale="2.0", extra=" * 1.0")
    assert why(run(cwd))["wave"] == "stage code changed: source of wave changed"


def test_seed_change(project):
    cwd = project()
    (cwd / "waves.yaml").write_text(SPEC.replace("stages:", "seed: 1\nstages:"))
    text = (cwd / "waves_mod.py").read_text()
    noisy = text.replace(
        "def wave(cfg: WaveConfig) -> np.ndarray:",
        "def wave(cfg: WaveConfig, *, rng: np.random.Generator) -> np.ndarray:",
    )
    (cwd / "waves_mod.py").write_text(noisy)
    run(cwd)
    assert why(run(cwd, "--seed", "9"))["wave"] == "random seed changed: run seed 1 -> 9"


def test_evicted_by_gc_and_corrupt_objects(project):
    cwd = project()
    big = ("--set", "wave.n=8192")  # 64 KiB: stored as an object, not inline in the record
    run(cwd, *big)
    gc = physflow("cache", "gc", "--max-bytes", "0", "--store", "st", cwd=cwd)
    assert gc.returncode == 0, gc.stderr
    reasons = why(run(cwd, *big))
    assert set(reasons) == {"wave", "rms"}
    assert "same key as in run" in reasons["wave"]
    assert "evicted by 'physflow cache gc'" in reasons["wave"]
    # corrupt the stored wave; verify quarantines it and deletes its record
    runs = sorted((cwd / "st" / "manifests").glob("*.json"), key=lambda p: p.stat().st_mtime)
    manifest = json.loads(runs[-1].read_text())
    wave = next(n for n in manifest["nodes"] if n["id"] == "wave")["outputs"]["value"]
    hexd = wave["objects"][0].partition(":")[2]
    chunks = [p for p in (cwd / "st" / "objects").rglob("*") if hexd in str(p) and p.is_file()]
    chunk = max(chunks, key=lambda p: p.stat().st_size)
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    assert physflow("cache", "verify", "--store", "st", cwd=cwd).returncode == 1
    reasons = why(run(cwd, *big))
    assert "was corrupt" in reasons["wave"] and "quarantined" in reasons["wave"]


def test_explain_command_defaults_to_the_latest_run_and_the_one_before(tmp_path, capsys):
    store = str(tmp_path / "st")
    assert main(["run", str(DEMO), "--store", store, "-q"]) == 0
    assert main(["run", str(DEMO), "--store", store, "-q", "--set", "noisy.sigma=0.2"]) == 0
    capsys.readouterr()
    assert main(["explain", "power", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "power: miss" in out
    assert (
        "input 'signal' changed because 'noisy' changed (config changed: sigma 0.1 -> 0.2)" in out
    )
    assert main(["explain", "tone", "--store", store]) == 0
    assert "tone: hit" in capsys.readouterr().out
    assert main(["explain", "--all", "--store", store, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["nodes"]) == {"noisy", "power"}
    assert data["nodes"]["noisy"] == ["config changed: sigma 0.1 -> 0.2"]
    # an explicit run and --against: the first run against the second
    runs = sorted((tmp_path / "st" / "manifests").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert main(["explain", str(runs[1]), "noisy", "--against", str(runs[0])]) == 0
    assert "sigma 0.1 -> 0.2" in capsys.readouterr().out


def test_explain_usage_errors(tmp_path, capsys):
    store = str(tmp_path / "st")
    assert main(["explain", "power", "--store", store]) == 2
    assert "no runs in" in capsys.readouterr().err
    assert main(["run", str(DEMO), "--store", store, "-q"]) == 0
    assert main(["explain", "powr", "--store", store]) == 2
    assert "Did you mean 'power'" in capsys.readouterr().err
    assert main(["explain", "--store", store]) == 2
    assert main(["scan", str(DEMO), "--store", store, "-q"]) == 0
    scan = next((tmp_path / "st" / "manifests").glob("scan-*.json"))
    assert main(["explain", str(scan), "power", "--store", store]) == 2
    assert "scan manifest" in capsys.readouterr().err


def test_new_node_and_failed_before(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    failing = ROOT / "tests" / "cli" / "specs" / "failing.yaml"
    spec.write_text(failing.read_text())
    store = str(tmp_path / "st")
    env_path = str(ROOT)
    sys.path.insert(0, env_path)
    try:
        assert main(["run", str(spec), "--store", store, "-q"]) == 1
        capsys.readouterr()
        assert main(["run", str(spec), "--store", store, "-q", "--explain"]) == 1
        out = capsys.readouterr().out
        assert "why check: it failed in run" in out and "then it failed: ValueError" in out
        spec.write_text(failing.read_text() + "  extra: {stage: demo.tone}\n")
        assert main(["run", str(spec), "--store", store, "-q", "--explain"]) == 1
        assert "why extra: new node (not in run" in capsys.readouterr().out
    finally:
        sys.path.remove(env_path)
