"""Every malformed spec in tests/spec/bad/ -> exit code 2 and one line naming file:line and the
offending name, never a traceback.

Each file starts with ``# expect: NAME`` (text the message must contain) and optionally
``# set: node.field=VALUE``; the offending line carries the marker ``# <-``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from physflow.cli import main

BAD = Path(__file__).parent / "bad"
FILES = sorted(BAD.glob("*.yaml"))


def expectations(path: Path) -> tuple[str, int, list[str]]:
    lines = path.read_text().splitlines()
    name = lines[0].removeprefix("# expect:").strip()
    marked = [i + 1 for i, line in enumerate(lines) if "# <-" in line]
    assert len(marked) == 1, f"{path.name}: mark exactly one line with '# <-'"
    sets = [line.removeprefix("# set:").strip() for line in lines if line.startswith("# set:")]
    return name, marked[0], [arg for s in sets for arg in ("--set", s)]


def test_there_are_at_least_30_bad_specs():
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_bad_spec_exit_2_with_line_and_name(path, tmp_path, capsys):
    name, line, sets = expectations(path)
    code = main(["run", str(path), "--store", str(tmp_path / "store"), *sets])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, err
    assert "Traceback" not in err and "Traceback" not in captured.out
    assert f"{path}:{line}:" in err, err
    assert name in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "store" / "manifests").exists() or not any(
        (tmp_path / "store" / "manifests").iterdir()
    )


@pytest.mark.parametrize("stem", ["wrong_type_float", "unknown_registered_stage", "cycle"])
def test_bad_spec_in_a_real_process(stem, tmp_path):
    path = BAD / f"{stem}.yaml"
    name, line, sets = expectations(path)
    done = subprocess.run(
        [sys.executable, "-m", "physflow.cli", "run", str(path), "--store", str(tmp_path), *sets],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{path}:{line}:" in done.stderr and name in done.stderr
