"""The small things a newcomer tripped over (issue 13, item 4), each checked as a user meets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import physflow as pf
from physflow.cli import main
from physflow.cli.common import UsageError, parse_size

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"
COUNTING = ROOT / "tests" / "cli" / "specs" / "counting.yaml"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("50G", 50 * 10**9),
        ("50GB", 50 * 10**9),
        ("50 gb", 50 * 10**9),
        ("10GB", 10 * 10**9),
        ("500M", 500 * 10**6),
        ("1.5T", 1_500 * 10**9),
        ("2GiB", 2 * 2**30),
        ("2Gi", 2 * 2**30),
        ("64K", 64_000),
        ("4096", 4096),
        ("3B", 3),
    ],
)
def test_sizes_with_or_without_b(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["G", "5X", "5GG", "-1G", "nan", "1e999G", ""])
def test_bad_sizes_are_usage_errors(text):
    with pytest.raises(UsageError, match="50G"):
        parse_size(text)


def test_docs_gc_example_is_accepted(tmp_path, capsys):
    """docs/store.md and the README say `cache gc --max-bytes 50G` / `10GB`."""
    store = str(tmp_path / "store")
    assert main(["run", str(DEMO), "--store", store, "-q"]) == 0
    capsys.readouterr()
    assert main(["cache", "gc", "--max-bytes", "50G", "--dry-run", "--store", store]) == 0
    assert "removed" in capsys.readouterr().out


def test_integral_floats_for_int_axes(tmp_path, capsys):
    """`--grid seed=lin:1:4:4` was rejected ("got 1.0"): seeds 1..4 as integers."""
    from physflow.manifests.scan_manifest import load_scan_manifest

    store = str(tmp_path / "store")
    args = ["scan", str(DEMO), "--grid", "seed=lin:1:4:4", "--store", store, "-q"]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    m = load_scan_manifest(out.split("manifest: ")[1].split()[0])
    assert m.coords["seed"] == [1, 2, 3, 4] and all(type(s) is int for s in m.coords["seed"])
    assert sorted({p.seed for p in m.points}) == [1, 2, 3, 4]
    # an int config field too (tone.n_samples), and float text stays float
    from physflow.cli.scan import parse_values

    assert parse_values("lin:1024:4096:4", "x") == [1024, 2048, 3072, 4096]
    assert parse_values("lin:0:1:3", "x") == [0.0, 0.5, 1.0]
    assert parse_values("lin:1.0:3.0:3", "x") == [1.0, 2.0, 3.0]
    assert main([*args[:3], "tone.n_samples=lin:1024:2048:2", *args[4:]]) == 0


def test_seed_axis_accepts_integral_floats_only():
    from physflow.scans.axes import ScanError, grid_points

    assert grid_points({"seed": [1.0, 2.0]}).values == [(1,), (2,)]
    with pytest.raises(ScanError, match="ints >= 0"):
        grid_points({"seed": [1.5]})


def test_type_errors_read_as_words(tmp_path, capsys):
    code = main(["run", str(COUNTING), "--set", "count.n=-2", "--store", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "expected an integer > 0, got -2" in err
    assert "Annotated" not in err and "msgspec.Meta" not in err
    code = main(["run", str(COUNTING), "--set", "count.fraction=2", "--store", str(tmp_path)])
    assert "expected a number >= 0 and <= 1, got 2" in capsys.readouterr().err
    code = main(["run", str(COUNTING), "--set", "count.mode=slow", "--store", str(tmp_path)])
    assert "expected one of 'fast', 'exact', got 'slow'" in capsys.readouterr().err


def test_stages_listing_names_constrained_types():
    from physflow.cli.stages import stage_info

    pf.register_stage("test.count", "tests.cli.cli_stages:count")
    info = stage_info("test.count", "tests.cli.cli_stages:count")
    types = {f["name"]: f["type"] for f in info["fields"]}
    assert types == {
        "n": "an integer > 0",
        "fraction": "a number >= 0 and <= 1",
        "mode": "one of 'fast', 'exact'",
    }


def test_missing_yml_suggests_yaml(tmp_path, capsys):
    (tmp_path / "demo.yaml").write_text(DEMO.read_text())
    assert main(["run", str(tmp_path / "demo.yml"), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "spec file not found" in err and f"Did you mean '{tmp_path / 'demo.yaml'}'" in err


def test_non_terminal_scan_log_has_one_line_per_point(tmp_path):
    """26 points used to print a line per node (53 here, 80 for the optical scan)."""
    sigmas = ",".join(str(0.05 * k) for k in range(1, 14))
    done = subprocess.run(
        [sys.executable, "-m", "physflow.cli", "scan", str(DEMO), "--grid", f"noisy.sigma={sigmas}",
         "--grid", "seed=1,2", "--store", str(tmp_path / "store")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 26, lines
    assert lines[0].startswith("[1/26] ok") and lines[-1].startswith("[26/26] ok")
    assert all("noisy.sigma=" in line and "seed=" in line for line in lines)


def test_show_counts_cancelled_points_as_cancelled(tmp_path, capsys):
    from tests.pipeline.test_scan_stages import link

    stop = tmp_path / "stop"
    stop.touch()
    log = tmp_path / "log"
    log.mkdir()
    p = link(log).with_values({"channel.stop_after": 2, "channel.stop_file": str(stop)})
    store = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        p.scan({"channel.snr_db": [0.0, 1.0, 2.0, 3.0, 4.0]}, collect=["metrics.ber"], store=store)
    assert main(["show", "latest", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    title = out.splitlines()[0]
    statuses = [line.split()[2] for line in out.splitlines()[2:7]]
    cancelled = statuses.count("cancelled")
    # at least the 3 channels that never ran (the serial runner may also report finished ones
    # as cancelled: issue 13 item 3); none of them failed
    assert cancelled >= 3 and statuses.count("ok") == 5 - cancelled
    assert "interrupted" in title and f"0 failed points / {cancelled} cancelled" in title
    manifest = json.loads(next((store / "manifests").glob("scan-*.json")).read_text())
    assert manifest.get("points_failed", 0) == 0 and manifest["points_cancelled"] == cancelled


def test_help_imports_no_numpy():
    """docs/cli.md: `physflow --help` imports only argparse (numpy came via physflow/__init__)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "physflow.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "manifest-schema" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = {"numpy", "msgspec", "yaml", "blake3", "zarr", "rich", "dask", "xarray", "torch"}
    assert not heavy & {name.split(".")[0] for name in imported}, sorted(imported)
    assert "physflow.cli.main" in imported


def test_public_api_still_works_lazily():
    code = (
        "import sys, physflow as pf\n"
        "assert 'numpy' not in sys.modules\n"
        "class C(pf.Config):\n    x: int = 1\n"
        "from physflow import stage, Pipeline, digest, load_spec\n"
        "print(sorted(set(pf.__all__) - set(dir(pf))), pf.digest(1)[:3])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[] b3:", done.stderr


UNGUARDED = """\
import physflow as pf
from physflow.pipeline.main_guard import check_main_guard


@pf.stage(version="1")
def one() -> int:
    return 1


p = pf.Pipeline("guard")
p.add("one", one)
{call}
"""


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("check_main_guard('processes')", "line 12"),
        ("def go():\n    check_main_guard('dask')\ngo()", "line 14"),
        ("if __name__ == '__main__':\n    check_main_guard('processes')", None),
        ("check_main_guard('threads')", None),
    ],
)
def test_missing_main_guard_is_named(tmp_path, call, expected):
    script = tmp_path / "job.py"
    script.write_text(UNGUARDED.format(call=call))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    if expected is None:
        assert done.returncode == 0, done.stderr
        return
    assert "MainGuardError" in done.stderr
    assert "re-import your script job.py" in done.stderr and expected in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr


def test_unguarded_processes_run_names_the_fix(tmp_path):
    script = tmp_path / "job.py"
    body = UNGUARDED.format(call="print(p.run(store='st', executor='processes').errors)")
    script.write_text(body.replace("from physflow.pipeline.main_guard import check_main_guard", ""))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert "if __name__ ==" in done.stderr + done.stdout
    assert "segfault" not in done.stderr + done.stdout
