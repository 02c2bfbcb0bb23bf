"""The README's two commands (issue 13, items 1 and 6): CI runs them as written, in order; the
main job needs only physflow's core dependencies; the test command installs what the tests
need."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "jax", "jaxlib", "scipy", "xarray", "dask", "distributed", "matplotlib",
         "optic", "pandas", "astropy", "numba", "h5py", "sympy"}  # fmt: skip


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)]


def test_ci_runs_the_readme_commands_in_order():
    main_job, tests = readme_blocks()
    printed = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert printed == [main_job, tests]
    assert "physflow run configs/optical_link.yaml" in main_job and "pytest" in tests
    script = (ROOT / ".ci" / "run").read_text()
    main_at = script.index('bash -c "${COMMANDS[0]}"')
    assert main_at < script.index('bash -c "${COMMANDS[1]}"')  # main job first, then tests


def _extras() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["optional-dependencies"], data["project"]["dependencies"]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_main_job_installs_the_core_and_tests_install_everything():
    main_job, tests = readme_blocks()
    assert "pip install -q -e . " in main_job + " " and "[" not in main_job  # no extras
    assert "'.[all]'" in tests
    extras, core = _extras()
    assert not {_name(r) for r in core} & HEAVY
    all_extras = {m.group(1) for m in re.finditer(r"(\w+)", extras["all"][0].split("[", 1)[1])}
    assert set(extras) - {"all"} <= all_extras  # every extra, the test tools included
    assert {"pytest", "hypothesis", "jsonschema", "selenium"} <= {_name(r) for r in extras["test"]}


def _closure(names: set[str]) -> set[str]:
    """Distributions needed by ``names`` (installed ones), transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def test_main_job_imports_only_core_dependencies(tmp_path):
    """The optical main job, run as the README runs it, imports no module outside the core
    dependencies' closure (so the core install is enough) and none of the heavy ones."""
    _, core = _extras()
    allowed = _closure({_name(r) for r in core} | {"physflow"}) | {"setuptools", "pip"}  # venv
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "physflow.cli", "run",
         str(ROOT / "configs" / "optical_link.yaml"), "--store", str(tmp_path / "st"), "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "metrics.ber" in done.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    owners = md.packages_distributions()
    third_party = {m for m in imported if m in owners and m not in sys.stdlib_module_names}
    assert not third_party & HEAVY, sorted(third_party & HEAVY)
    outside = {m for m in third_party if not {_name(d) for d in owners[m]} & allowed}
    assert not outside, f"the main job imports {sorted(outside)}, which the core install lacks"
