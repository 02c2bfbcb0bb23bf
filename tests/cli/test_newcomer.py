"""The places where a newcomer following the README got stuck (issue 13, items 1 and 2), each run
as a user runs it: the ``physflow`` command in a real subprocess, in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"

OSC_PY = """\
import numpy as np
import physflow as pf


class OscConfig(pf.Config):
    freq_hz: float = 5.0
    n: int = 1000


@pf.stage(version="1")
def wave(cfg: OscConfig) -> np.ndarray:
    t = np.arange(cfg.n) / cfg.n
    return np.sin(2 * np.pi * cfg.freq_hz * t)


@pf.stage(version="1")
def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))
"""

OSC_YAML = """\
name: osc
stages:
  wave: {stage: "osc:wave", config: {freq_hz: 3.0}}
  rms: {stage: "osc:rms", inputs: {x: wave}}
"""


def cli(*args: str, cwd: Path, check: int | None = 0, env: dict | None = None):
    """``physflow ARGS`` as installed (no PYTHONPATH help: user modules must be found by the
    CLI itself)."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "physflow.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=180,
    )
    assert "Traceback" not in done.stderr, done.stderr
    if check is not None:
        assert done.returncode == check, done.stdout + done.stderr
    return done


# -- item 1: the README flow ----------------------------------------------------------------------


def test_show_missing_absolute_path_when_a_store_exists(tmp_path):
    """Command 1 (main job) leaves ./.physflow/manifests; `show /abs/missing.json` then raised
    NotImplementedError (Path.glob on an absolute pattern) instead of 'no such manifest'."""
    (tmp_path / ".physflow" / "manifests").mkdir(parents=True)
    missing = str(tmp_path / "nowhere" / "missing.json")
    done = cli("show", missing, "--store", ".physflow", cwd=tmp_path, check=2)
    assert "no such manifest" in done.stderr and "NotImplementedError" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # glob metacharacters in a run id are plain characters, not patterns
    for ref in ("x[", "*", "2026*"):
        done = cli("show", ref, "--store", ".physflow", cwd=tmp_path, check=2)
        assert "no such manifest" in done.stderr


def test_show_finds_a_run_by_id_prefix(tmp_path):
    store = tmp_path / "store"
    run = cli("run", str(DEMO), "--store", str(store), "-q", cwd=tmp_path)
    path = Path(run.stdout.split("manifest: ")[1].strip())
    shown = cli("show", path.stem[:12], "--store", str(store), cwd=tmp_path)
    assert "0 hits / 3 misses" in shown.stdout


def test_every_test_is_hermetic(hermetic):
    """tests/conftest.py: each test runs in an empty directory of its own, with the store and
    home pointing there, never at the checkout's ./.physflow or the user's files."""
    cwd = Path.cwd()
    assert cwd == hermetic and cwd != ROOT and not any(cwd.iterdir())
    assert Path(os.environ["PHYSFLOW_STORE"]).parent == cwd
    assert Path(os.environ["HOME"]) != Path("/root") and Path.home() == Path(os.environ["HOME"])
    from physflow.artifacts.store import default_store_path

    assert Path(default_store_path()).resolve().is_relative_to(cwd)


# -- item 2: the user's own stage module -----------------------------------------------------------


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "osc.py").write_text(OSC_PY)
    (proj / "osc.yaml").write_text(OSC_YAML)
    return proj


@pytest.mark.parametrize("executor", ["serial", "processes", "dask"])
def test_stage_module_next_to_the_spec(tmp_path, executor):
    """`physflow run proj/osc.yaml` from another directory imports proj/osc.py, in the CLI and
    in worker processes (the rms of a sine is 1/sqrt(2))."""
    if executor == "dask":
        pytest.importorskip("distributed")
    proj = _project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ["run", str(proj / "osc.yaml"), "--store", str(tmp_path / "store"), "-q"]
    done = cli(*args, "--executor", executor, "--workers", "1", cwd=elsewhere)
    assert "0 hits, 2 misses, 0 failed" in done.stdout
    rms = float(done.stdout.split("rms = ")[1].split()[0])
    assert rms == pytest.approx(2**-0.5, rel=1e-6)


def test_stage_module_in_the_current_directory(tmp_path):
    proj = _project(tmp_path)
    specs = tmp_path / "specs"
    specs.mkdir()
    (proj / "osc.yaml").rename(specs / "osc.yaml")
    done = cli("run", str(specs / "osc.yaml"), "--store", "st", "-q", cwd=proj)
    assert "2 misses" in done.stdout


def test_missing_module_says_where_it_looked_and_how_to_fix(tmp_path):
    proj = _project(tmp_path)
    (proj / "osc.py").rename(proj / "oscillator.py")
    done = cli("run", str(proj / "osc.yaml"), "--store", "st", cwd=tmp_path, check=2)
    err = done.stderr
    assert "osc.yaml:3:" in err and "cannot import module 'osc'" in err
    assert str(proj) in err and str(tmp_path) in err  # where it looked
    assert "Put osc.py next to the spec" in err and "PYTHONPATH" in err
    assert len(err.strip().splitlines()) == 1
    # a module that exists but imports something missing names that dependency instead
    (proj / "osc.py").write_text("import not_installed_dep_xyz\n" + OSC_PY)
    err = cli("run", str(proj / "osc.yaml"), "--store", "st", cwd=tmp_path, check=2).stderr
    assert "it imports 'not_installed_dep_xyz', which is not installed" in err


def test_scan_and_dag_find_the_module_too(tmp_path):
    proj = _project(tmp_path)
    spec = str(proj / "osc.yaml")
    dag = cli("dag", spec, cwd=tmp_path)
    assert "wave -->|x| rms" in dag.stdout
    scan = cli("scan", spec, "--grid", "wave.freq_hz=1,2", "--store", "st", "-q", cwd=tmp_path)
    assert "scan of 2 points" in scan.stdout
