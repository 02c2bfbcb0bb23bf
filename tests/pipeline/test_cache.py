"""Cache semantics, checked by counting stage executions."""

from __future__ import annotations

import textwrap

import numpy as np

import physflow as pf

from .counting_stages import Level, Scale, noise, rounded, scale, source, split, total


def chain(level=1.0, factor=2.0, name="chain"):
    p = pf.Pipeline(name, seed=3)
    p.add("src", source, Level(value=level))
    p.add("scaled", scale, Scale(factor=factor), x="src")
    p.add("sum", total, x="scaled")
    return p


def test_second_run_executes_nothing(store, calls):
    first = chain().run(store=store)
    assert first.misses == ["src", "scaled", "sum"] and first.hits == []
    assert first["sum"] == 2000.0
    calls.clear()
    second = chain().run(store=store)
    assert sum(calls.values()) == 0
    assert second.hits == ["src", "scaled", "sum"]
    assert second["sum"] == 2000.0
    assert second.digest("scaled") == first.digest("scaled")


def test_config_change_reexecutes_node_and_descendants_only(store, calls):
    chain().run(store=store)
    calls.clear()
    res = chain(factor=3.0).run(store=store)
    assert dict(calls) == {"scale": 1, "total": 1}
    assert res.hits == ["src"] and res.misses == ["scaled", "sum"]
    assert res["sum"] == 3000.0


def test_version_bump_reexecutes(store, calls):
    chain().run(store=store)
    bumped = pf.stage(version="2")(scale.func)
    p = pf.Pipeline("chain", seed=3)
    p.add("src", source, Level(value=1.0))
    p.add("scaled", bumped, Scale(factor=2.0), x="src")
    p.add("sum", total, x="scaled")
    calls.clear()
    res = p.run(store=store)
    assert res.misses == ["scaled"]  # same bytes out -> 'sum' is an early cut-off hit
    assert res.hits == ["src", "sum"]
    assert calls["scale"] == 1 and calls["total"] == 0


def _stage_from_source(tmp_path, body: str, module: str):
    import importlib.util

    path = tmp_path / f"{module}.py"
    path.write_text(textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.double


def test_source_change_reexecutes_but_formatting_does_not(tmp_path, store):
    v1 = _stage_from_source(
        tmp_path,
        """
        import physflow as pf
        @pf.stage(version="1")
        def double(x: float) -> float:
            return x * 2
    """,
        "mod_a",
    )
    reformatted = _stage_from_source(
        tmp_path,
        '''
        import physflow as pf
        @pf.stage(version="1")
        def double(x: float) -> float:
            """Now with a docstring and a comment."""
            return x*2  # same code
    ''',
        "mod_a",
    )
    changed = _stage_from_source(
        tmp_path,
        """
        import physflow as pf
        @pf.stage(version="1")
        def double(x: float) -> float:
            return x * 3
    """,
        "mod_a",
    )
    assert v1.fingerprint == reformatted.fingerprint
    assert v1.fingerprint != changed.fingerprint


def test_declared_outputs_enter_the_fingerprint():
    def work(x: float) -> dict:
        return {"a": x, "b": x}

    assert (
        pf.stage(outputs=["a", "b"])(work).fingerprint
        != pf.stage(outputs=["a", "c"])(work).fingerprint
    )
    assert pf.stage(outputs=["a", "b"])(work).fingerprint != pf.stage(work).fingerprint


def test_deps_enter_the_fingerprint(tmp_path):
    def helper_a(x):
        return x + 1

    def helper_b(x):
        return x + 2

    def work(x: float) -> float:
        return x

    assert (
        pf.stage(deps=[helper_a])(work).fingerprint != pf.stage(deps=[helper_b])(work).fingerprint
    )
    assert (
        pf.stage(deps=[np.arange(3)])(work).fingerprint
        != pf.stage(deps=[np.arange(4)])(work).fingerprint
    )


def test_renaming_deterministic_node_is_a_hit(store, calls):
    chain().run(store=store)
    calls.clear()
    p = pf.Pipeline("renamed", seed=3)
    p.add("origin", source, Level(value=1.0))
    p.add("times_two", scale, Scale(factor=2.0), x="origin")
    p.add("summed", total, x="times_two")
    res = p.run(store=store)
    assert sum(calls.values()) == 0
    assert res.hits == ["origin", "times_two", "summed"]


def test_early_cutoff(store, calls):
    def pipe(value):
        p = pf.Pipeline("cutoff", seed=0)
        p.add("r", rounded, Level(value=value))
        p.add("s", scale, Scale(factor=5.0), x="r")
        return p

    assert pipe(1.2).run(store=store)["s"] == 5.0
    calls.clear()
    res = pipe(1.3).run(store=store)  # rounds to the same value
    assert res.misses == ["r"] and res.hits == ["s"]
    assert dict(calls) == {"rounded": 1}


def test_named_outputs(store, calls):
    p = pf.Pipeline("outputs", seed=0)
    p.add("src", source, Level(value=1.0))
    p.add("parts", split, x="src")
    p.add("low_sum", total, x="parts.low")
    res = p.run(store=store)
    assert res["low_sum"] == 500.0
    assert set(res["parts"]) == {"low", "high"}
    assert res["parts.high"].shape == (500,)
    calls.clear()
    assert p.run(store=store).hits == ["src", "parts", "low_sum"]
    assert sum(calls.values()) == 0


def test_rng_stage_seed_in_key_deterministic_stage_not(store, calls):
    def pipe(seed, node="n"):
        p = pf.Pipeline("rng", seed=seed)
        p.add(node, noise, Scale(factor=1.0))
        return p

    a = pipe(1).run(store=store)
    b = pipe(2).run(store=store)
    c = pipe(1, node="other").run(store=store)
    assert calls["noise"] == 3  # new seed or new node id -> new stream -> miss
    assert len({a.digest("n"), b.digest("n"), c.digest("other")}) == 3
    calls.clear()
    assert pipe(1).run(store=store).hits == ["n"] and calls["noise"] == 0
    # deterministic stages ignore the seed
    chain().run(store=store)
    p = chain()
    p.seed = 99
    calls.clear()
    assert p.run(store=store).hits == ["src", "scaled", "sum"]


def test_same_key_twice_in_one_run_executes_once(store, calls):
    p = pf.Pipeline("twins", seed=0)
    p.add("a", source, Level(value=7.0))
    p.add("b", source, Level(value=7.0))
    p.add("sa", total, x="a")
    p.add("sb", total, x="b")
    res = p.run(store=store)
    assert calls["source"] == 1 and calls["total"] == 1
    assert res["sa"] == res["sb"] == 7000.0


def test_failed_node_records_nothing_and_rerun_resumes(store, calls, tmp_path):
    flag = tmp_path / "fail"
    flag.write_text("1")

    @pf.stage(version="1")
    def flaky(x: np.ndarray) -> float:
        if flag.exists():
            raise RuntimeError("boom")
        return float(x.sum())

    p = pf.Pipeline("flaky", seed=0)
    p.add("src", source, Level(value=1.0))
    p.add("f", flaky, x="src")
    p.add("after", scale, Scale(factor=1.0), x="f")
    p.add("side", total, x="src")
    res = p.run(store=store)
    assert res.failed == ["f"] and res.skipped == ["after"]
    assert "boom" in res.errors["f"] and "RuntimeError" in res.tracebacks["f"]
    assert res.manifest.status == "failed"
    assert "side" in res.misses
    flag.unlink()
    calls.clear()
    res2 = p.run(store=store)
    assert res2.ok and sorted(res2.misses) == ["after", "f"]
    assert calls["source"] == 0


@pf.stage(version="1")
def doubles_in_place(x: np.ndarray) -> float:
    x *= 2  # modifies its input: not allowed, inputs are shared
    return float(x.sum())


def test_inputs_are_read_only_on_every_path(store, tmp_path):
    """Served from memory (same run) or from the store (a later run): same behaviour."""
    p = pf.Pipeline("inplace", seed=0)
    p.add("src", source, Level(value=1.0))
    p.add("bad", doubles_in_place, x="src")
    first = p.run(store=store)  # src computed now: its value reaches 'bad' from memory
    second = p.run(store=store)  # src is a hit: its value reaches 'bad' from the store
    for res in (first, second):
        assert res.failed == ["bad"]
        assert "read-only" in res.errors["bad"] and "x.copy()" in res.errors["bad"]
    np.testing.assert_array_equal(second["src"], np.full(1000, 1.0))
