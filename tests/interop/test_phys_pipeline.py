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


# -- issue 13, item 5: fan-in, load-time validation, scans over dict metrics --------------


def test_fan_in_node_matches_phys_pipelines_own_dag_executor(tmp_path):
    """A DagState node (two upstream states) runs as a physflow node with inputs a and b, and
    gives the payload phys-pipeline's DagExecutor computes for the same graph."""
    from phys_pipeline.executor import DagExecutor
    from phys_pipeline.types import NodeSpec

    gain2 = s.GainStage(s.GainConfig(gain=2.0))
    gain5 = s.GainStage(s.GainConfig(gain=5.0))
    mixer = s.MixStage(s.MixConfig(weight=0.5))
    nodes = [
        NodeSpec("a", deps=["src"], stage=gain2),
        NodeSpec("b", deps=["src"], stage=gain5),
        NodeSpec("mix", deps=["a", "b"], stage=mixer),
        NodeSpec("src", stage=s.GainStage(s.GainConfig(gain=1.0))),
    ]
    theirs = DagExecutor().run(SimpleState(payload=np.arange(10_000.0)), nodes)
    expected = theirs.results["mix"].state.payload

    p = pf.Pipeline("fan", seed=0)
    p.add("src", s.ramp)
    p.add("a", pf.from_phys_pipeline(gain2), state="src")
    p.add("b", pf.from_phys_pipeline(gain5), state="src")
    p.add("mix", s.mix, {"weight": 0.5}, a="a.state", b="b.state")
    first = p.run(store=tmp_path / "store")
    assert first.ok, first.tracebacks
    np.testing.assert_array_equal(first["mix.state"].payload, expected)  # 2x + 0.5 * 5x
    assert first["mix.metrics"]["power"] == pytest.approx(np.mean(expected**2))
    again = p.run(store=tmp_path / "store")
    assert set(again.hits) == {"src", "a", "b", "mix"}
    # a plain array can feed a fan-in input directly (it becomes SimpleState(payload=...))
    q = pf.Pipeline("fan2", seed=0)
    q.add("src", s.ramp)
    q.add("mix", s.mix, a="src", b="src")
    np.testing.assert_array_equal(q.run(store=tmp_path / "store")["mix.state"].payload,
                                  2 * np.arange(10_000.0))  # fmt: skip


def test_fan_in_in_yaml_and_its_input_names_are_checked(tmp_path):
    spec = tmp_path / "fan.yaml"
    spec.write_text(
        "stages:\n"
        "  src: {stage: 'tests.interop.pp_stages:ramp'}\n"
        "  mix: {stage: 'tests.interop.pp_stages:mix', inputs: {a: src, c: src}}\n"
    )
    with pytest.raises(pf.SpecError, match="has no input 'c'") as err:
        pf.load_spec(spec)
    assert err.value.line == 3
    with pytest.raises(pf.StageDefinitionError, match="distinct input names"):
        pf.from_phys_pipeline(s.MixStage(s.MixConfig()), inputs=["a", "a"])


@pytest.mark.parametrize("value", ["abc", "[1, [2, 3]]"])
def test_bad_array_config_is_a_spec_error_at_load(tmp_path, value, capsys):
    """`--set fir.taps=abc` used to fail at run time (exit 1); now exit 2 with the line."""
    from physflow.cli import main

    spec = tmp_path / "fir.yaml"
    spec.write_text(
        "stages:\n"
        "  src: {stage: 'tests.interop.pp_stages:ramp'}\n"
        "  fir: {stage: 'tests.interop.pp_stages:fir', config: {taps: [1.0, 2.0]}, "
        "inputs: {state: src}}\n"
    )
    store = tmp_path / "store"
    code = main(["run", str(spec), "--set", f"fir.taps={value}", "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{spec}:3:" in err and "field 'taps'" in err and "expected" in err
    assert not (store / "manifests").exists()
    assert s.executions("filter") == 0
    assert main(["run", str(spec), "--store", str(store), "-q"]) == 0
    assert "fir.metrics.out = 2" in capsys.readouterr().out  # taps . ramp[:2] = 1*0 + 2*1


def test_pydantic_constraints_are_checked_at_load(tmp_path):
    """Constraints only the pydantic model knows (loss_db >= 0) are checked when the spec is
    loaded or a value is set, not mid-run."""
    spec = tmp_path / "a.yaml"
    spec.write_text(
        "stages:\n"
        "  src: {stage: 'tests.interop.pp_stages:ramp'}\n"
        "  att: {stage: 'tests.interop.pp_stages:atten', config: {loss_db: -1.0}, "
        "inputs: {state: src}}\n"
    )
    with pytest.raises(pf.SpecError, match=r"loss_db.*greater than or equal to 0") as err:
        pf.load_spec(spec)
    assert err.value.line == 3 and "\n" not in str(err.value)
    p = pf.load_spec(spec, {"att.loss_db": 6.0})
    with pytest.raises(pf.PipelineError, match="greater than or equal to 0"):
        p.with_values({"att.loss_db": -3.0})
    result = p.run(store=tmp_path / "store")
    np.testing.assert_allclose(result["att.state"].payload, np.arange(10_000.0) * 10**-0.3)


def test_scan_collects_a_key_of_a_dict_output(tmp_path, capsys):
    """`collect: [power.metrics.power]`: a phys-pipeline stage's metrics entry as a scan
    variable, from the spec's scan block and from --collect (power = mean((x + w*x)^2))."""
    import xarray as xr

    from physflow.cli import main

    spec = tmp_path / "mix.yaml"
    spec.write_text(
        "stages:\n"
        "  src: {stage: 'tests.interop.pp_stages:ramp'}\n"
        "  power: {stage: 'tests.interop.pp_stages:mix', inputs: {a: src, b: src}}\n"
        "scan:\n"
        "  grid: {power.weight: [0.0, 1.0, 3.0]}\n"
        "  collect: [power.metrics.power]\n"
    )
    x = np.arange(10_000.0)
    out = tmp_path / "r.nc"
    store = str(tmp_path / "store")
    assert main(["scan", str(spec), "-o", str(out), "--store", store, "-q"]) == 0
    ds = xr.open_dataset(out, engine="h5netcdf").load()
    expected = [np.mean(((1 + w) * x) ** 2) for w in (0.0, 1.0, 3.0)]
    np.testing.assert_allclose(ds["power.metrics.power"].values, expected, rtol=1e-12)
    capsys.readouterr()
    out2 = tmp_path / "r2.nc"
    args = ["scan", str(spec), "--collect", "power.metrics.power", "--store", store, "-q"]
    assert main([*args, "--grid", "power.weight=2", "-o", str(out2)]) == 0
    assert "0 misses" not in capsys.readouterr().out  # a new point
    ds2 = xr.open_dataset(out2, engine="h5netcdf").load()
    assert ds2["power.metrics.power"].values.tolist() == [np.mean((3 * x) ** 2)]
    assert main(["scan", str(spec), "--collect", "power.nope.power", "--store", store]) == 2
    assert "nope" in capsys.readouterr().err
