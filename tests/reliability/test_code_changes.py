"""False hits from code that is not what the key says (issue 12, classes 2-4): a stage edited
while a run is in flight, a stale .pyc, closure values, config methods."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import physflow as pf

REPO = str(Path(__file__).resolve().parents[2])

MODULE = """
import physflow as pf


class Cfg(pf.Config):
    k: float = 1.0


@pf.stage(version="1")
def work(cfg: Cfg) -> float:
    return cfg.k * {factor}
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), REPO])}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the stale-.pyc case needs bytecode caches
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_stage_edited_during_a_run_is_not_recorded_by_workers(tmp_path):
    (tmp_path / "edited_mod.py").write_text(MODULE.format(factor="2.0"))
    script = f"""
    import json, os, time
    import physflow as pf
    import edited_mod
    p = pf.Pipeline("edit", seed=0)
    p.add("w", edited_mod.work, edited_mod.Cfg(k=3.0))
    src = open("edited_mod.py").read().replace("2.0", "5.0")
    with open("edited_mod.py", "w") as fh:
        fh.write(src)
    t = time.time() + 10
    os.utime("edited_mod.py", (t, t))
    if __name__ == "__main__":
        res = p.run(store={str(tmp_path / "store")!r}, executor="processes", workers=1)
        print(json.dumps({{"failed": res.failed, "errors": res.errors}}))
    """
    (tmp_path / "run_edit.py").write_text(textwrap.dedent(script))
    done = subprocess.run(
        [sys.executable, "run_edit.py"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), REPO])}, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["failed"] == ["w"] and "changed during the run" in out["errors"]["w"]
    assert not list(pf.Store(tmp_path / "store").actions.list_keys())  # nothing recorded


def test_a_stale_pyc_is_keyed_by_the_bytecode_that_runs(tmp_path):
    mod = tmp_path / "stale_mod.py"
    mod.write_text(MODULE.format(factor="2.0"))
    probe = (
        "import stale_mod; print(stale_mod.work.fingerprint, stale_mod.work.func(stale_mod.Cfg()))"
    )
    first = _python(probe, tmp_path)
    assert first.returncode == 0, first.stderr
    st = mod.stat()
    mod.write_text(MODULE.format(factor="7.0"))  # same size: only a digit changed
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the same mtime: pyc is stale
    stale = _python("import warnings; warnings.simplefilter('always'); " + probe, tmp_path)
    assert stale.returncode == 0, stale.stderr
    assert stale.stdout.split()[1] == "2.0"  # Python runs the old bytecode
    assert "StaleSourceWarning" in stale.stderr and "stale .pyc" in stale.stderr
    for cache in tmp_path.rglob("__pycache__"):
        for f in cache.iterdir():
            f.unlink()
    fresh = _python(probe, tmp_path)
    assert fresh.stdout.split()[1] == "7.0"
    # three different codes, three different fingerprints: the old code's results are never
    # filed under the new source's key
    assert len({first.stdout.split()[0], stale.stdout.split()[0], fresh.stdout.split()[0]}) == 3


def _factory(scale):
    @pf.stage(version="1")
    def scaled(x: float) -> float:
        return scale * x

    return scaled


def test_closure_values_enter_the_fingerprint():
    assert _factory(2.0).fingerprint != _factory(3.0).fingerprint
    assert _factory(2.0).fingerprint == _factory(2.0).fingerprint
    with pytest.raises(pf.StageDefinitionError, match="closure variable 'scale'"):
        _factory(object())


def test_config_methods_enter_the_fingerprint(tmp_path):
    source = """
import physflow as pf


class Cfg(pf.Config):
    k: float = 1.0

    def gain(self) -> float:
        return self.k * {factor}


@pf.stage(version="1")
def work(cfg: Cfg) -> float:
    return cfg.gain()
"""
    (tmp_path / "m1.py").write_text(source.format(factor="2.0"))
    (tmp_path / "m2.py").write_text(source.format(factor="3.0"))
    done = _python("import m1, m2; print(m1.work.fingerprint == m2.work.fingerprint)", tmp_path)
    assert done.stdout.strip() == "False", done.stderr
