"""phys-pipeline 2.0 stages running as physflow nodes: cached, with array configs digested
correctly (phys-pipeline's own hash collides on them), State stored without pickle."""

from __future__ import annotations

import numpy as np
import pytest
from phys_pipeline.hashing import hash_model
from phys_pipeline.types import SimpleState

import physflow as pf
from physflow.interop.phys_pipeline import StoredState

from . import pp_stages as s


@pytest.fixture(autouse=True)
def counters(tmp_path):
    s.set_counter_dir(tmp_path / "counts")


def taps_pair() -> tuple[np.ndarray, np.ndarray]:
    a = np.linspace(0.0, 1.0, 10_000)
    b = a.copy()
    b[5_000] += 1.0  # one element of 10,000 differs
    return a, b


def build(filt: pf.Stage) -> pf.Pipeline:
    p = pf.Pipeline("pp", seed=0)
    p.add("src", s.ramp)
    p.add("gain", s.gain, state="src")
    p.add("filt", filt, state="gain.state")
    p.add("out", s.payload_of, state="filt.state")
    return p


def test_array_configs_do_not_collide_and_hits_misses_are_right(tmp_path):
    a, b = taps_pair()
    # the bug being fixed: phys-pipeline's hash of a 10,000-element array uses str(array)
    assert hash_model(s.FilterConfig(taps=a)) == hash_model(s.FilterConfig(taps=b))

    filt = pf.from_phys_pipeline(s.FilterStage(s.FilterConfig(taps=a)))
    p = build(filt)
    first = p.run(store=tmp_path / "store")
    assert first.ok, first.tracebacks
    assert sorted(first.misses) == ["filt", "gain", "out", "src"]
    ramp = np.arange(10_000, dtype=float)
    assert first["out"] == pytest.approx(float(np.dot(a, 3.0 * ramp)))
    assert first["gain.metrics"] == {"gain_db": pytest.approx(20 * np.log10(3.0))}
    assert (s.executions("gain"), s.executions("filter")) == (1, 1)

    again = p.run(store=tmp_path / "store")
    assert sorted(again.hits) == ["filt", "gain", "out", "src"]
    assert (s.executions("gain"), s.executions("filter")) == (1, 1)

    other = p.with_values({"filt.taps": b}).run(store=tmp_path / "store")
    assert sorted(other.hits) == ["gain", "src"] and sorted(other.misses) == ["filt", "out"]
    assert other["out"] == pytest.approx(float(np.dot(b, 3.0 * ramp)))
    assert other.manifest.node("filt").config_digest != first.manifest.node("filt").config_digest
    assert (s.executions("gain"), s.executions("filter")) == (1, 2)

    # a second wrapper around an equal instance shares the cached work
    same = build(pf.from_phys_pipeline(s.FilterStage(s.FilterConfig(taps=a.copy()))))
    assert sorted(same.run(store=tmp_path / "store").hits) == ["filt", "gain", "out", "src"]


def test_scalar_override_and_state_round_trip(tmp_path):
    a, _ = taps_pair()
    p = build(pf.from_phys_pipeline(s.FilterStage(s.FilterConfig(taps=a))))
    changed = p.with_values({"gain.gain": 5})  # int from YAML/CLI converted to float
    assert changed.nodes["gain"].config.gain == 5.0
    result = changed.run(store=tmp_path / "store", executor="threads", workers=2)
    assert result.ok, result.tracebacks
    state = result["gain.state"]
    assert isinstance(state, StoredState)
    restored = state.to_state()
    assert isinstance(restored, SimpleState)
    np.testing.assert_array_equal(restored.payload, 5.0 * np.arange(10_000.0))
    assert result["filt.state"].fields["meta"] == {"n_taps": 10_000}


def test_state_meta_is_part_of_the_digest(tmp_path):
    # SimpleState.hashable_repr ignores most meta keys; physflow's digest does not
    one = StoredState.from_state(SimpleState(payload=1.0, meta={"label": "a"}))
    two = StoredState.from_state(SimpleState(payload=1.0, meta={"label": "b"}))
    assert (
        SimpleState(1.0, {"label": "a"}).hashable_repr()
        == SimpleState(1.0, {"label": "b"}).hashable_repr()
    )
    assert pf.digest(one) != pf.digest(two)


def test_unstorable_state_attribute_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="cannot store"):
        StoredState.from_state(SimpleState(payload=object()))


def test_from_phys_pipeline_rejects_non_stages():
    with pytest.raises(pf.StageDefinitionError, match="PipelineStage"):
        pf.from_phys_pipeline(object())


def test_interop_stage_in_a_yaml_spec(tmp_path):
    spec = tmp_path / "pp.yaml"
    spec.write_text(
        "stages:\n"
        "  src: {stage: 'tests.interop.pp_stages:ramp'}\n"
        "  gain:\n"
        "    stage: 'tests.interop.pp_stages:gain'\n"
        "    config: {gain: 0.5}\n"
        "    inputs: {state: src}\n"
    )
    p = pf.load_spec(spec)
    assert p.nodes["gain"].config.gain == 0.5 and p.nodes["gain"].config.name == "stage cfg"
    result = p.run(store=tmp_path / "store")
    assert result.ok, result.tracebacks
    payload = result["gain.state"].payload
    np.testing.assert_array_equal(payload, 0.5 * np.arange(10_000.0))


def test_processes_executor_with_an_importable_stage(tmp_path):
    p = pf.Pipeline("pp", seed=0)
    p.add("src", s.ramp)
    p.add("gain", s.gain, state="src")
    result = p.run(store=tmp_path / "store", executor="processes", workers=1)
    assert result.ok, result.tracebacks
    np.testing.assert_array_equal(result["gain.state"].payload, 3.0 * np.arange(10_000.0))
    assert s.executions("gain") == 1  # counted through the file, from the worker process


def test_instance_attributes_besides_cfg_are_in_the_fingerprint():
    a, _ = taps_pair()
    one = s.FilterStage(s.FilterConfig(taps=a))
    two = s.FilterStage(s.FilterConfig(taps=a))
    two.window = "hann"  # some stages keep settings outside their config
    assert (
        pf.from_phys_pipeline(one).fingerprint
        == pf.from_phys_pipeline(s.FilterStage(s.FilterConfig(taps=a))).fingerprint
    )
    assert pf.from_phys_pipeline(one).fingerprint != pf.from_phys_pipeline(two).fingerprint
    two.window = object()
    with pytest.raises(pf.StageDefinitionError, match="besides cfg"):
        pf.from_phys_pipeline(two)
