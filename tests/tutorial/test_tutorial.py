"""docs/tutorial.md, executed (issue 13, item 9): its files are written, its commands run in an
empty directory in order, and every output line it shows must appear in what they print
(``…`` stands for what varies: times, run ids)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.M | re.S)
RUN_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")


def steps(text: str) -> list[tuple[str, str, str]]:
    """("file", name, content) and ("console", command, expected output), in document order."""
    found = []
    for lang, info, body in FENCE.findall(text):
        title = re.search(r'title="([^"]+)"', info)
        if title:
            found.append(("file", title.group(1), body))
        elif lang == "console":
            command, expected = None, []
            for line in body.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        found.append(("console", command, "\n".join(expected)))
                    command, expected = line[2:], []
                else:
                    expected.append(line)
            if command is not None:
                found.append(("console", command, "\n".join(expected)))
    return found


def _pattern(line: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in line.rstrip().split("…")]
    return re.compile(".*".join(parts) + r"\s*")


def _normalise(output: str, cwd: Path) -> list[str]:
    text = output.replace(f"{cwd}/", "").replace(f"{cwd.resolve()}/", "")
    return [RUN_ID.sub("…", line).rstrip() for line in text.splitlines()]


def test_tutorial_covers_the_newcomers_path():
    text = TUTORIAL.read_text()
    kinds = steps(text)
    files = [name for kind, name, _ in kinds if kind == "file"]
    commands = [cmd for kind, cmd, _ in kinds if kind == "console"]
    assert files[:2] == ["osc.py", "osc.yaml"]
    for needed in ("physflow run", "--explain", "physflow explain", "physflow scan",
                   "physflow report", "python open_outputs.py"):  # fmt: skip
        assert any(needed in c for c in commands), needed
    assert any("--grid" in c and c.count("--grid") == 2 for c in commands)  # a 2-D scan
    assert "load_manifest" in text
    readme = (ROOT / "README.md").read_text()
    assert "(docs/tutorial.md)" in readme


@pytest.mark.slow
def test_every_tutorial_command_runs_as_shown(tmp_path):
    pytest.importorskip("xarray")
    pytest.importorskip("matplotlib")
    env = {k: v for k, v in os.environ.items() if k not in ("PHYSFLOW_STORE", "PYTHONPATH")}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for kind, name, body in steps(TUTORIAL.read_text()):
        if kind == "file":
            (tmp_path / name).write_text(body)
            continue
        done = subprocess.run(
            ["bash", "-c", name], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        actual = _normalise(done.stdout + "\n" + done.stderr, tmp_path)
        expected = [line for line in body.splitlines() if line.strip()]
        failing = any(line.startswith("physflow: error:") for line in expected)
        assert (done.returncode != 0) == failing, f"$ {name}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        for line in expected:
            pattern = _pattern(RUN_ID.sub("…", line))
            assert any(pattern.fullmatch(a) for a in actual), (
                f"$ {name}\nexpected a line like: {line}\ngot:\n" + "\n".join(actual)
            )
    assert (tmp_path / "run-report.html").stat().st_size > 2000
    assert (tmp_path / "scan.png").read_bytes()[:4] == b"\x89PNG"
