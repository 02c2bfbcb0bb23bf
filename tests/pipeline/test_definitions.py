"""Malformed stages and pipelines are rejected early with messages that name the place and fix."""

from __future__ import annotations

import numpy as np
import pytest

import physflow as pf

from .counting_stages import Level, Scale, scale, source, split, total


def test_stage_signature_errors():
    with pytest.raises(pf.StageDefinitionError, match=r"\*args.*explicitly"):

        @pf.stage
        def star(*args):
            return 1

    with pytest.raises(pf.StageDefinitionError, match="'rng' must be keyword-only"):

        @pf.stage
        def positional_rng(x, rng):
            return x

    with pytest.raises(pf.StageDefinitionError, match="'seed' is not one the runner provides"):

        @pf.stage
        def bad_kwonly(x, *, seed):
            return x

    with pytest.raises(pf.StageDefinitionError, match=r"not annotated with a physflow.Config"):

        @pf.stage
        def unannotated(cfg, x):
            return x

    with pytest.raises(pf.StageDefinitionError, match=r"must be the first|not the first"):

        @pf.stage
        def late_config(x, cfg: Level):
            return x

    with pytest.raises(pf.StageDefinitionError, match="lambdas"):
        pf.stage(lambda x: x)

    with pytest.raises(pf.StageDefinitionError, match=r"lazy=.*not inputs"):

        @pf.stage(lazy=["y"])
        def lazy_typo(x):
            return x

    with pytest.raises(pf.StageDefinitionError, match="identifier"):

        @pf.stage(outputs=["a-b"])
        def bad_output(x):
            return x

    with pytest.raises(pf.StageDefinitionError, match="unknown resource 'ram'"):

        @pf.stage(resources={"ram": 3})
        def bad_resource(x):
            return x


def test_pipeline_errors_name_node_and_fix():
    p = pf.Pipeline("p")
    p.add("src", source, Level())
    with pytest.raises(pf.PipelineError, match="'src' is already"):
        p.add("src", source, Level())
    with pytest.raises(pf.PipelineError, match=r"node 'x'.*no input 'y'.*Its inputs are: x"):
        p.add("x", total, y="src")
    with pytest.raises(pf.PipelineError, match=r"node 't'.*input 'x'.*not connected"):
        p.add("t", total)
    with pytest.raises(pf.PipelineError, match=r"node 'c'.*expects Scale"):
        p.add("c", scale, Level(), x="src")
    with pytest.raises(pf.PipelineError, match=r"node 'c'.*takes no config"):
        p.add("c", total, Level(), x="src")
    with pytest.raises(pf.PipelineError, match="not valid"):
        p.add("a.b", total, x="src")
    with pytest.raises(pf.PipelineError, match="not a physflow stage"):
        p.add("f", np.sum, x="src")


class Needs(pf.Config):
    gain: float


def test_missing_config_names_required_fields():
    @pf.stage
    def needs(cfg: Needs) -> float:
        return cfg.gain

    p = pf.Pipeline("p")
    with pytest.raises(pf.PipelineError, match=r"node 'n'.*Needs.*required fields: gain"):
        p.add("n", needs)
    p.add("ok", needs, {"gain": 2})  # a mapping is converted through the class
    assert p.nodes["ok"].config == Needs(gain=2.0)


def test_unresolvable_config_annotation_is_explained():
    with pytest.raises(pf.StageDefinitionError, match="could not be resolved"):

        @pf.stage
        def local(cfg: NotDefinedAnywhere) -> float:  # noqa: F821
            return 1.0


def test_validation_errors():
    p = pf.Pipeline("p")
    p.add("src", source, Level())
    p.add("t", total, x="sorce")
    with pytest.raises(
        pf.PipelineError, match=r"node 't'.*unknown node 'sorce'.*Did you mean 'src'"
    ):
        p.validate()

    p = pf.Pipeline("p")
    p.add("src", source, Level())
    p.add("parts", split, x="src")
    p.add("t", total, x="parts.lo")
    with pytest.raises(pf.PipelineError, match=r"no output 'lo'.*Did you mean 'low'"):
        p.validate()

    p = pf.Pipeline("p")
    p.add("src", source, Level())
    p.add("t", total, x="src.value2")
    with pytest.raises(pf.PipelineError, match="single output"):
        p.validate()


def test_cycle_is_reported_with_its_path():
    p = pf.Pipeline("loop")
    p.add("a", scale, Scale(), x="c")
    p.add("b", scale, Scale(), x="a")
    p.add("c", scale, Scale(), x="b")
    with pytest.raises(
        pf.PipelineError, match=r"cycle: (a -> c -> b -> a|a -> b -> c -> a|.*->.*->.*->)"
    ):
        p.validate()


def test_wrong_declared_outputs_fail_the_node(tmp_path):
    @pf.stage(outputs=["a", "b"])
    def two(x: np.ndarray) -> dict:
        return {"a": 1}

    p = pf.Pipeline("p")
    p.add("src", source, Level())
    p.add("two", two, x="src")
    res = p.run(store=tmp_path)
    assert res.failed == ["two"]
    assert "missing: ['b']" in res.errors["two"]


def test_overrides_validate_through_config_class():
    p = pf.Pipeline("p")
    p.add("src", source, Level())
    q = p.with_values({"src.value": "2.5"})
    assert q.nodes["src"].config.value == 2.5 and p.nodes["src"].config.value == 1.0
    with pytest.raises(pf.PipelineError, match=r"no field 'valu'.*Did you mean 'value'"):
        p.with_values({"src.valu": 1})
    with pytest.raises(pf.PipelineError, match=r"no node 'sr'.*Did you mean 'src'"):
        p.with_values({"sr.value": 1})
    with pytest.raises(pf.PipelineError, match=r"src.value"):
        p.with_values({"src.value": "abc"})


def test_decorated_and_partial_helpers_can_be_deps():
    import functools

    @functools.lru_cache
    def helper(x: int) -> int:
        return 2 * x

    @pf.stage(version="1", deps=[helper, functools.partial(helper, 3)])
    def uses_helper() -> int:
        return helper(1)

    @pf.stage(version="1", deps=[functools.partial(helper, 4)])
    def other_partial() -> int:
        return helper(1)

    assert uses_helper.fingerprint.startswith("b3:")
    assert uses_helper() == 2
