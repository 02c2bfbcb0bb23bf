"""configs/awg_program.yaml as users run it (``pf.load_spec``, ``physflow run``), its manifest,
generated specs, and bad specs rejected with the file, line and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.stages import awg
from physflow.stages.awg.examples import default_program

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "configs" / "awg_program.yaml"


def test_yaml_program_has_a_node_per_segment_and_runs(store):
    p = awg.load_program(SPEC)  # pf.load_spec + the wiring check
    cfg = p.nodes["program"].config
    assert cfg == default_program().config
    assert len(cfg.segments) >= 10 and len(cfg.tones) == 2 and cfg.sample_rate_hz == 625e6
    assert all(len(t.freqs_hz) >= 4 for t in cfg.tones)
    names = [s.name for s in cfg.segments]
    assert list(p.nodes) == ["program", *names, "assemble"]
    res = p.run(store=store).raise_on_failure()
    assert set(res.misses) == {"program", "assemble", *names}
    samples, steps = res["assemble.samples"], res["assemble.steps"]
    assert samples.dtype == np.int16 and samples.shape == (2, steps.total_samples)
    assert [r["segment"] for r in steps.rows()] == names and steps.rows()[-1]["next"] == 0
    assert steps.loops[names.index("image")] == 4
    manifest = pf.load_manifest(res.manifest_path)
    by_id = manifest.nodes  # node id -> record
    for name in names:  # the manifest shows every segment's own synthesis
        assert by_id[name].stage.endswith(":segment") and by_id[name].status == "miss"
    again = pf.load_spec(SPEC).run(store=store)
    assert again.misses == []
    assert again.digest("assemble.samples") == res.digest("assemble.samples")


def test_physflow_run_cli(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "physflow.cli", "run", str(SPEC), "--store", str(tmp_path), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "14 misses" in out.stdout
    manifest = json.loads(next((tmp_path / "manifests").glob("*.json")).read_text())
    assert {n["id"] for n in manifest["nodes"]} >= {"program", "probe", "assemble"}


def test_generated_yaml_round_trips(tmp_path, store):
    prog = default_program().replace("probe", amps=0.07)
    path = tmp_path / "generated.yaml"
    path.write_text(prog.to_yaml(name="gen", description="generated"))
    p = awg.load_program(path)
    assert p.nodes["program"].config == prog.config
    a = p.run(store=store).raise_on_failure()
    b = prog.pipeline().run(store=store)
    assert b.misses == [] and a.digest("assemble.samples") == b.digest("assemble.samples")


def _bad(tmp_path, old: str, new: str) -> str:
    text = SPEC.read_text()
    assert old in text, old
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(pf.SpecError) as err:
        awg.load_program(path)
    return str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("kind: ramp, duration_s: 20.0e-6", "kind: rampp, duration_s: 20.0e-6",
         ["bad.yaml:", "'program'", "segments", "kind"]),
        ("{name: probe, kind: hold, duration_s: 10.0e-6, amps: 0.05}",
         "{name: probe, kind: hold, n_samples: 1000, amps: 0.05}",
         ["probe", "n_samples", "multiple of 32"]),
        ("[0.0, 0.0, 0.0, 0.0]]}", "[0.0, 0.0, 0.0]]}", ["out", "df_hz", "channel 1", "4 tones"]),
        ("amps: 0.05}", "amps: 1.5}", ["probe", "full_scale"]),
        ("{name: low, kind: hold", "{name: load, kind: hold", ["unique", "load"]),
        ("sample_rate_hz: 625.0e6", "sample_rate_hz: fast", ["sample_rate_hz", "float"]),
        ("df_hz: -4.0e6}", "df_hz: 400.0e6}", ["sweep", "Nyquist"]),
    ],
)  # fmt: skip
def test_bad_programs_name_the_line_and_field(tmp_path, old, new, words):
    message = _bad(tmp_path, old, new)
    for word in words:
        assert word in message, (word, message)
    assert "bad.yaml:" in message


def test_miswired_segment_nodes_are_caught(tmp_path, store):
    text = SPEC.read_text()
    path = tmp_path / "swap.yaml"
    path.write_text(text.replace("content: program.s03}", "content: program.s04}", 1))
    with pytest.raises(ValueError, match=r"node 'probe' reads program.s04 .* slot s03"):
        awg.load_program(path)
    # a spec missing a segment node loads (plain load_spec) but assemble says what to add
    lines = [ln for ln in text.splitlines() if not ln.startswith("  probe:")]
    path.write_text("\n".join(lines).replace(" s03: probe,", ""))
    res = pf.load_spec(path).run(store=store)
    assert res.failed == ["assemble"]
    assert "segment 'probe' (slot s03) is not wired" in res.errors["assemble"]
