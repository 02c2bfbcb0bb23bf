"""One single-output convention: for every way of declaring outputs, what a downstream input
receives, ``res[node]``, ``res.digest(node)``, the consumer's key input and the manifest agree."""

from __future__ import annotations

import pytest

import physflow as pf

from . import output_stages as S

CASES = {
    "single": (S.single, 7),
    "single_dict": (S.single_dict, {"a": 1, "b": 2.0}),
    "one_named": (S.one_named, {"a": 1}),
    "two_named": (S.two_named, {"a": 1, "b": 2.0}),
    "struct_named": (S.struct_named, {"a": 1, "b": 2.0}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_node_reference_means_the_same_everywhere(tmp_path, name):
    stage, expected = CASES[name]
    p = pf.Pipeline("outs")
    p.add("src", stage)
    p.add("sink", S.echo, x="src")
    res = p.run(store=tmp_path / "s").raise_on_failure()
    assert res["src"] == expected
    assert res["sink"] == res["src"]  # what the consumer received
    consumer = res.manifest.node("sink")
    assert consumer.inputs["x"] == res.digest("src")  # the digest its key used
    opened = pf.load_manifest(res.manifest_path).open("src")
    assert opened == expected
    again = p.run(store=tmp_path / "s")
    assert again.hits == ["src", "sink"] and again.digest("src") == res.digest("src")


def test_named_output_reference(tmp_path):
    p = pf.Pipeline("outs")
    p.add("src", S.two_named)
    p.add("sink", S.echo, x="src.b")
    res = p.run(store=tmp_path / "s").raise_on_failure()
    assert res["sink"] == res["src.b"] == 2.0
    assert res.manifest.node("sink").inputs["x"] == res.digest("src.b") == pf.digest(2.0)
    with pytest.raises(pf.PipelineError, match=r"has no output 'c'.*outputs are: a, b"):
        pf.Pipeline("bad").add("src", S.two_named).add("sink", S.echo, x="src.c").validate()


def test_value_is_reserved():
    with pytest.raises(pf.StageDefinitionError, match="'value' is the name of a single-output"):

        @pf.stage(version="1", outputs=["value"])
        def bad() -> dict:
            return {"value": 1}


def test_struct_annotated_inputs_are_inputs_not_configs(tmp_path):
    assert S.reading_value.config_type is None and S.reading_value.input_names == ("reading",)
    assert S.scaled_reading.config_type is S.Gain
    p = pf.Pipeline("values")
    p.add("r", S.make_reading)
    p.add("v", S.reading_value, reading="r")
    p.add("s", S.scaled_reading, S.Gain(k=3.0), reading="r")
    res = p.run(store=tmp_path / "s").raise_on_failure()
    assert res["v"] == 2.5 and res["s"] == 7.5
