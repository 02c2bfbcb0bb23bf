"""The physflow CLI end to end, in real subprocesses, on the specs in configs/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"
FAILING = ROOT / "tests" / "cli" / "specs" / "failing.yaml"
HEAVY = ("dask", "xarray", "torch", "jax", "scipy", "matplotlib", "distributed", "zarr")


def physflow(*args: str, store: Path | None = None, check: int | None = 0):
    """Run the CLI in a subprocess in the test's own working directory (tests/conftest.py's
    hermetic fixture), with the checkout on PYTHONPATH for the test stages."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if store is not None:
        env["PHYSFLOW_STORE"] = str(store)
    done = subprocess.run(
        [sys.executable, "-m", "physflow.cli", *args],
        capture_output=True,
        text=True,
        cwd=os.getcwd(),
        env=env,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    if check is not None:
        assert done.returncode == check, done.stdout + done.stderr
    return done


def manifest_of(done) -> dict:
    line = next(x for x in done.stdout.splitlines() if x.startswith("manifest: "))
    return json.loads(Path(line.removeprefix("manifest: ")).read_text())


def test_run_rerun_set_and_show(tmp_path):
    store = tmp_path / "store"
    first = physflow("run", str(DEMO), store=store)
    assert "0 hits, 3 misses, 0 failed" in first.stdout
    assert "[3/3]" in first.stderr  # plain progress lines when not a terminal
    m1 = manifest_of(first)
    assert m1["status"] == "ok" and m1["store"] == str(store)

    again = physflow("run", str(DEMO), store=store)
    assert "3 hits, 0 misses" in again.stdout

    changed = physflow("run", str(DEMO), "--set", "noisy.sigma=0.5", store=store)
    assert "1 hits, 2 misses" in changed.stdout
    m3 = manifest_of(changed)
    assert m3["overrides"] == {"noisy.sigma": 0.5}
    noisy = next(n for n in m3["nodes"] if n["id"] == "noisy")
    assert noisy["config"] == {"sigma": 0.5}
    power = next(n for n in m3["nodes"] if n["id"] == "power")
    # mean power of a unit sinusoid plus white noise: 1/2 + sigma^2
    assert power["outputs"]["value"]["value"] == pytest.approx(0.5 + 0.25, rel=0.05)
    # the run prints the sink's result, the same number as in the manifest
    printed = next(
        line for line in changed.stdout.splitlines() if line.strip().startswith("power =")
    )
    assert float(printed.split("=")[1]) == pytest.approx(
        power["outputs"]["value"]["value"], rel=1e-5
    )

    seeded = physflow("run", str(DEMO), "--seed", "7", "--store", str(store))
    assert "1 hits, 2 misses" in seeded.stdout  # the tone has no rng: still a hit

    shown = physflow("show", "latest", store=store)
    assert "seed=7" in shown.stdout
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[2:] if line}
    assert rows["tone"][2] == "hit" and rows["noisy"][2] == "miss"
    by_path = physflow("show", manifest_of(first)["run_id"], "--store", str(store))
    assert "0 hits / 3 misses" in by_path.stdout


def test_failed_node_exit_1_and_manifest_written(tmp_path):
    store = tmp_path / "store"
    done = physflow("run", str(FAILING), store=store, check=1)
    assert "1 failed" in done.stdout and "ValueError: peak" in done.stderr
    manifest = manifest_of(done)
    assert manifest["status"] == "failed"
    check = next(n for n in manifest["nodes"] if n["id"] == "check")
    assert check["status"] == "failed" and "ValueError" in check["error"]
    assert "Traceback" in check["traceback"]  # kept in the manifest, not printed
    schema = json.loads(physflow("manifest-schema").stdout)
    jsonschema.validate(manifest, schema)
    # the threshold via --set makes it pass, and the tone is reused
    ok = physflow("run", str(FAILING), "--set", "check.when_above=2", store=store)
    assert "1 hits, 1 misses, 0 failed" in ok.stdout


def test_cache_stats_verify_gc(tmp_path):
    store = tmp_path / "store"
    physflow("run", str(DEMO), store=store)
    stats = physflow("cache", "stats", "--store", str(store))
    assert "objects" in stats.stdout and "actions" in stats.stdout
    # the demo's records live in actions.sqlite (a new local store): counted as rows
    assert "'actions': {'entries': 3," in stats.stdout and (store / "actions.sqlite").is_file()
    assert "bad_objects: {}" in physflow("cache", "verify", store=store).stdout
    # corrupt one stored array: verify reports it (exit 1) and the next run recomputes
    chunk = next(
        p
        for p in (store / "objects").rglob("*")
        if p.is_file() and p.name != "zarr.json" and p.stat().st_size > 1000
    )
    data = bytearray(chunk.read_bytes())
    data[100] ^= 0xFF
    chunk.write_bytes(bytes(data))
    bad = physflow("cache", "verify", store=store, check=1)
    assert "bad_objects" in bad.stdout
    rerun = physflow("run", str(DEMO), store=store)
    assert "0 failed" in rerun.stdout and "misses" in rerun.stdout
    assert "bad_objects: {}" in physflow("cache", "verify", store=store).stdout
    gc = physflow("cache", "gc", "--max-bytes", "0", "--keep-manifests", "0", store=store)
    assert "removed_actions" in gc.stdout
    after = physflow("run", str(DEMO), store=store)
    assert "0 hits, 3 misses" in after.stdout


def test_dag_formats(tmp_path):
    mermaid = physflow("dag", str(DEMO)).stdout
    assert mermaid.startswith("flowchart LR")
    assert "tone -->|signal| noisy" in mermaid and "noisy -->|signal| power" in mermaid
    dot = physflow("dag", str(DEMO), "--format", "dot").stdout
    assert '"tone" -> "noisy"' in dot and dot.strip().endswith("}")
    if shutil.which("dot"):
        out = tmp_path / "g.png"
        physflow("dag", str(DEMO), "--format", "png", "-o", str(out))
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        done = physflow("dag", str(DEMO), "--format", "png", "-o", str(tmp_path / "g.png"), check=2)
        assert "graphviz" in done.stderr


def test_stages_lists_fields_and_defaults():
    out = physflow("stages").stdout
    assert "demo.tone" in out and "freq_hz: float = 1000.0" in out
    assert "demo.add_noise" in out and "uses rng" in out
    data = json.loads(physflow("stages", "demo.", "--json").stdout)
    tone = next(s for s in data if s["name"] == "demo.tone")
    assert {"name": "n_samples", "type": "int", "default": 4096} in tone["fields"]


def test_manifest_schema_is_a_valid_json_schema(tmp_path):
    schema = json.loads(physflow("manifest-schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    out = tmp_path / "schema.json"
    physflow("manifest-schema", "-o", str(out))
    assert json.loads(out.read_text()) == schema


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from physflow.cli import main\n"
        "rc = main(['--help'])\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY [] 0" in done.stdout, done.stdout + done.stderr
    assert "run" in done.stdout and "manifest-schema" in done.stdout


def test_usage_errors_exit_2(tmp_path):
    assert "unknown executor" in physflow("run", str(DEMO), "--executor", "gpu", check=2).stderr
    assert "not found" in physflow("run", str(tmp_path / "nope.yaml"), check=2).stderr
    physflow("frobnicate", check=2)
    physflow(check=2)
    assert "expected node.field=VALUE" in physflow("run", str(DEMO), "--set", "x", check=2).stderr
    assert "no such manifest" in physflow("show", str(tmp_path / "m.json"), check=2).stderr


def test_scan_subcommand_is_wired():
    done = physflow("scan", "--help", check=None)
    assert done.returncode in (0, 2)
    if done.returncode == 0:
        assert "usage: physflow scan" in done.stdout
    else:
        assert "not available" in done.stderr


def test_executors_compute_the_same_keys(tmp_path):
    store = tmp_path / "store"
    procs = physflow("run", str(DEMO), "--executor", "processes", "--workers", "2", store=store)
    assert "0 hits, 3 misses" in procs.stdout
    threads = physflow("run", str(DEMO), "--executor", "threads", store=store)
    assert "3 hits, 0 misses" in threads.stdout


def test_rich_progress_on_a_terminal(tmp_path):
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm", "PHYSFLOW_STORE": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "physflow.cli", "run", str(DEMO)],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "nodes" in screen and "3/3" in screen and "hits 0" in screen
    assert "[1/3]" not in screen  # not the plain form
    assert b"0 hits, 3 misses" in out


def test_scan_then_show(tmp_path):
    store = tmp_path / "store"
    done = physflow("scan", str(DEMO), "-o", str(tmp_path / "r.nc"), store=store, check=None)
    if done.returncode == 2 and "not available" in done.stderr:
        pytest.skip("physflow.cli.scan not installed")
    assert done.returncode == 0, done.stderr
    shown = physflow("show", "latest", store=store).stdout
    assert "noisy.sigma" in shown and "power" in shown
    lines = [line.split() for line in shown.splitlines()[2:6]]
    sigmas = [float(row[1]) for row in lines]
    powers = [float(row[3]) for row in lines]
    assert sigmas == [0.01, 0.1, 0.3, 1.0]
    for sigma, p in zip(sigmas, powers):
        assert p == pytest.approx(0.5 + sigma**2, rel=0.06)


def test_output_into_a_closed_pipe_is_quiet():
    """`physflow stages | head -0`: the reader leaves early; no error, no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "physflow.cli", "stages"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write (the CLI is still importing)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err
