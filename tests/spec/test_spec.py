"""Loading YAML specs: the same pipeline (and cache keys) as Python, overrides, the scan block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.pipeline.registry import register_stage, registered_names, unregister_stage
from physflow.pipeline.spec import (
    ScanSpec,
    SpecError,
    load_spec_full,
    load_spec_with_scan,
    parse_set_option,
)
from physflow.stages.demo import NoiseConfig, ToneConfig, add_noise, power, tone

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"


def python_demo() -> pf.Pipeline:
    p = pf.Pipeline("demo", seed=1)
    p.add("tone", tone, ToneConfig(freq_hz=1000.0, sample_rate_hz=48000.0, n_samples=4096))
    p.add("noisy", add_noise, NoiseConfig(sigma=0.1), signal="tone")
    p.add("power", power, signal="noisy")
    return p


def test_spec_builds_the_same_pipeline_as_python(tmp_path):
    spec = pf.load_spec(DEMO)
    ref = python_demo()
    assert spec.name == "demo" and spec.seed == 1
    assert list(spec.nodes) == list(ref.nodes)
    for node_id, node in ref.nodes.items():
        assert spec.nodes[node_id].stage is node.stage
        assert spec.nodes[node_id].config == node.config
        assert spec.nodes[node_id].inputs == node.inputs
    assert spec.spec_path == str(DEMO) and spec.spec_digest.startswith("b3:")
    # same keys: the Python pipeline's results are hits for the YAML one
    ref.run(store=tmp_path)
    again = spec.run(store=tmp_path)
    assert sorted(again.hits) == ["noisy", "power", "tone"]
    # physics: mean power of a unit sinusoid plus white noise = 1/2 + sigma^2
    assert again["power"] == pytest.approx(0.5 + 0.1**2, rel=0.05)


def test_overrides_convert_through_the_config_class():
    path, value = parse_set_option("tone.n_samples=2048")
    assert (path, value) == ("tone.n_samples", 2048)
    p = pf.load_spec(
        DEMO, {"noisy.sigma": parse_set_option("noisy.sigma=1")[1], "tone.n_samples": "512"}
    )
    assert p.nodes["noisy"].config.sigma == 1.0 and type(p.nodes["noisy"].config.sigma) is float
    assert p.nodes["tone"].config.n_samples == 512
    assert p.spec_digest != pf.load_spec(DEMO).spec_digest
    assert parse_set_option("a.b=[1, 2]")[1] == [1, 2]
    assert parse_set_option("a.b=abc")[1] == "abc"


def test_spec_error_fields(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text(
        "name: x\nstages:\n  tone: {stage: demo.tone}\n  noisy:\n    stage: demo.add_noise\n"
        "    config: {sigma: abc}\n    inputs: {signal: tone}\n"
    )
    with pytest.raises(SpecError) as info:
        pf.load_spec(bad)
    err = info.value
    assert (err.line, err.node, err.field, err.expected, err.got) == (
        6,
        "noisy",
        "sigma",
        "float",
        "abc",
    )
    assert str(err) == f"{bad}:6:21: node 'noisy', field 'sigma': expected float, got 'abc'"
    assert isinstance(err, pf.PipelineError)


def test_unknown_names_get_suggestions(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("stages:\n  tone: {stage: demo.tone, config: {frq_hz: 1.0}}\n")
    with pytest.raises(SpecError) as info:
        pf.load_spec(bad)
    assert info.value.suggestions == ["freq_hz"]
    assert "Did you mean 'freq_hz'?" in str(info.value)


def test_scan_block_is_parsed_into_msgspec_types(tmp_path):
    _, scan = load_spec_with_scan(DEMO)
    assert isinstance(scan, ScanSpec)
    assert scan.grid == {"noisy.sigma": [0.01, 0.1, 0.3, 1.0]}
    assert scan.collect == ["power"] and scan.effective_mode == "grid"
    assert scan.plot is not None and scan.plot.logx
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "stages:\n  tone: demo.tone\n  noisy: {stage: demo.add_noise, inputs: {signal: tone}}\n"
        "scan:\n  sample:\n    ranges: {noisy.sigma: [0.0, 1.0], tone.amplitude: [1, 2]}\n"
        "    n: 16\n    method: sobol\n    seed: 3\n  collect: [noisy]\n  reference: noisy\n"
    )
    _, scan = load_spec_with_scan(spec)
    assert scan.sample.method == "sobol" and scan.sample.n == 16
    assert scan.sample.ranges["tone.amplitude"] == (1.0, 2.0)
    assert scan.effective_mode == "sample" and scan.reference == "noisy"
    assert load_spec_with_scan(DEMO.with_name("demo.yaml"))[1] is not None
    spec.write_text("stages:\n  tone: demo.tone\n")
    assert load_spec_with_scan(spec)[1] is None


def test_registered_names_resolve_and_runtime_registration(tmp_path):
    assert registered_names()["demo.tone"] == "physflow.stages.demo:tone"
    register_stage("test.power2", power)
    try:
        spec = tmp_path / "r.yaml"
        spec.write_text(
            "stages:\n  tone: demo.tone\n  p: {stage: test.power2, inputs: {signal: tone}}\n"
        )
        p = pf.load_spec(spec)
        assert p.nodes["p"].stage is power
        assert p.run(store=tmp_path / "st")["p"] == pytest.approx(0.5, rel=1e-3)
    finally:
        unregister_stage("test.power2")


def test_multi_output_refs_and_nested_values(tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "stages:\n"
        "  t: {stage: demo.tone, config: {n_samples: 64}}\n"
        "  n: {stage: demo.add_noise, config: {sigma: 0.0}, inputs: {signal: t}}\n"
    )
    loaded = load_spec_full(spec, {"t.amplitude": 2})
    result = loaded.pipeline.run(store=tmp_path / "st")
    np.testing.assert_array_equal(result["n"], result["t"])
    assert np.max(np.abs(result["t"])) == pytest.approx(2.0, rel=1e-2)


def test_shorthand_nodes_take_overrides(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("stages:\n  tone: demo.tone\n")
    p = pf.load_spec(spec, {"tone.freq_hz": 50})
    assert p.nodes["tone"].config == ToneConfig(freq_hz=50.0)
