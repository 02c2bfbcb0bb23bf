"""Untracked globals are named in a warning (issue 12, class 5): the most common false hit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])

MODULE = """
import numpy as np
from math import pi
from numpy import sqrt

import physflow as pf

GAIN = 3.0


def helper(x):
    return 2 * x


class Cfg(pf.Config):
    k: float = 1.0


@pf.stage(version="1")
def reads_globals(cfg: Cfg) -> float:
    return helper(cfg.k) * GAIN + pi + float(np.sum(sqrt(4.0)))


@pf.stage(version="1", deps=[helper, GAIN])
def covered(cfg: Cfg) -> float:
    return helper(cfg.k) * GAIN


@pf.stage(version="2", warn_untracked=False)
def silenced(cfg: Cfg) -> float:
    return helper(cfg.k) * GAIN
"""


def _warnings_of_import(tmp_path: Path) -> str:
    (tmp_path / "user_stages.py").write_text(MODULE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), REPO])}
    code = "import warnings; warnings.simplefilter('always'); import user_stages"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return done.stderr


def test_user_helpers_and_constants_are_named_with_the_fix(tmp_path):
    err = _warnings_of_import(tmp_path)
    lines = [line for line in err.splitlines() if "UntrackedGlobalsWarning" in line]
    assert len(lines) == 1, err  # one stage warns: covered and silenced ones do not
    line = lines[0]
    assert "reads_globals reads GAIN, helper from module level" in line
    assert "deps=[GAIN, helper]" in line
    # modules, the standard library, installed packages and configs are not user globals
    for name in ("np", "pi", "sqrt", "Cfg"):
        assert f" {name}," not in line and f" {name} " not in line


def test_physflow_packs_do_not_warn():
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c",
         "import physflow.stages.optical, physflow.stages.demo, physflow.stages.rf"],
        capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "PYTHONPATH": REPO},
    )  # fmt: skip
    assert "UntrackedGlobalsWarning" not in done.stderr
