"""Fuzzing the spec loader and the command line (issue 12, item 13): whatever the input, the
result is a Pipeline or a one-line SpecError naming the file (and a line when there is one),
within a second; never another exception, a traceback or a hang. Hostile YAML (alias bombs,
deep nesting, recursive anchors, NUL bytes, invalid UTF-8) is covered by explicit cases."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import physflow as pf
from physflow.cli import main
from physflow.pipeline.spec_limits import MAX_DEPTH

FUZZ = settings(
    max_examples=1000,
    deadline=1000,  # ms: each example within a second
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STAGES = ["demo.tone", "demo.add_noise", "demo.power", "physflow.stages.demo:tone", "nope"]
KEYS = ["name", "seed", "stages", "scan", "description", "stage", "config", "inputs", "grid",
        "collect", "sigma", "freq_hz", "n_samples", "signal", "tone", "noisy", "power"]  # fmt: skip


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "fuzz.yaml"


def check_load(path: Path, data: bytes) -> None:
    """Load ``data`` as a spec: a Pipeline, or a SpecError that says where."""
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        pf.load_spec(path)
    except pf.SpecError as exc:
        message = str(exc)
        assert message.startswith(f"{path}:"), message
        assert "\n" not in message, message
        if exc.line is not None:
            assert message.startswith(f"{path}:{exc.line}:"), message
    assert time.perf_counter() - start < 1.0


# -- generated inputs --------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(spec_file, data):
    check_load(spec_file, data)


@FUZZ
@given(st.text(max_size=300))
def test_random_text(spec_file, text):
    check_load(spec_file, text.encode("utf-8", "surrogatepass"))


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(STAGES + KEYS),
)  # fmt: skip
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=25,
)


def _node() -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {"stage": st.one_of(st.sampled_from(STAGES), scalars)},
        optional={
            "config": st.one_of(
                st.dictionaries(st.sampled_from(["sigma", "freq_hz", "n_samples", "x"]), scalars),
                trees,
            ),
            "inputs": st.one_of(st.dictionaries(st.sampled_from(["signal", "x"]),
                                                st.sampled_from(["tone", "noisy", "power", "zz",
                                                                 "tone.value", "a.b.c"])), trees),
        },
    )  # fmt: skip


specs = st.fixed_dictionaries(
    {"stages": st.one_of(st.dictionaries(st.sampled_from(["tone", "noisy", "power", "x-1", "9"]),
                                         _node(), max_size=4), trees)},
    optional={"name": scalars, "seed": scalars, "scan": trees, "bogus": trees},
)  # fmt: skip


@FUZZ
@given(specs)
def test_spec_shaped_documents(spec_file, spec):
    text = yaml.safe_dump(spec, allow_unicode=True, sort_keys=False)
    check_load(spec_file, text.encode())


@settings(max_examples=200, deadline=2000,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.integers(2, 12), st.integers(2, 12), st.booleans())
def test_alias_chains(spec_file, width, depth, flow):
    """Anchors of anchors: small text, up to 12**12 values when expanded."""
    lines = ["stages:", "  a: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, depth):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"  a{i}: &a{i} [{refs}]" if flow else f"  a{i}: &a{i}\n" + "".join(
            f"    - *a{i - 1}\n" for _ in range(width)).rstrip())  # fmt: skip
    check_load(spec_file, "\n".join(lines).encode() + b"\n")


# -- the hostile cases the issue names ----------------------------------------------------


def _bomb() -> bytes:
    lines = ["stages:", "  a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


HOSTILE = {
    "alias_bomb": (_bomb(), "expands to more than", 7),  # line 7: 9**6 values
    "deep_flow": (b"stages:\n  a: " + b"[" * 1000 + b"]" * 1000 + b"\n", "nested more than", 2),
    "deep_block": (
        b"stages:\n" + b"".join(b"  " * (i + 1) + f"k{i}:\n".encode() for i in range(1000)),
        "nested more than",
        MAX_DEPTH + 1,
    ),
    "recursive_anchor": (b"stages: &s\n  a: *s\n", "recursive anchor", 1),  # the anchored value
    "nul": (b"name: demo\nstages:\n  a: {stage: demo.tone}\x00\n", "U+0000", 3),
    "bad_utf8": (b"name: demo\nstages:\n  a: {stage: demo.t\xffone}\n", "not UTF-8", 3),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_yaml_is_a_spec_error_with_a_line(tmp_path, case, capsys):
    data, expected, line = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(pf.SpecError) as err:
        pf.load_spec(path)
    assert time.perf_counter() - start < 1.0
    assert expected in str(err.value) and err.value.line == line, str(err.value)
    assert main(["run", str(path), "--store", str(tmp_path / "st")]) == 2
    out = capsys.readouterr()
    assert out.err.startswith(f"physflow: error: {path}:{line}:") and "Traceback" not in out.err


def test_size_is_bounded(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"stages:\n  a: {stage: demo.tone}\n" + b"#" * (2 * 2**20))
    with pytest.raises(pf.SpecError, match="at most"):
        pf.load_spec(path)
    # the bound on values counts plain values as well as aliased ones (a smaller bound here,
    # so that the test stays fast: PyYAML composes ~40,000 values per second)
    from physflow.pipeline import spec_limits

    monkeypatch.setattr(spec_limits, "MAX_VALUES", 1000)
    path.write_text("stages:\n  a: {stage: demo.tone}\nscan:\n  points: [" + "0," * 1005 + "]")
    with pytest.raises(pf.SpecError, match="expands to more than 1,000 values") as err:
        pf.load_spec(path)
    assert err.value.line == 4


def test_specs_are_code_is_documented():
    spec_doc = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text()
    assert "imports user code" in spec_doc and "Makefile" in spec_doc


# -- the command line --------------------------------------------------------------------

DEMO = str(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
arg_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
)


@FUZZ
@given(st.lists(arg_text, max_size=3), st.lists(arg_text, max_size=2))
def test_cli_set_options(capsys, values, extra):
    """`physflow dag SPEC --set ...`: loads the spec with overrides, never runs anything."""
    args = ["dag", DEMO]
    for v in values:
        args += ["--set", v]
    start = time.perf_counter()
    code = main(args + [e for e in extra if not e.startswith("-")])
    out = capsys.readouterr()
    assert time.perf_counter() - start < 1.0
    assert code in (0, 2), out.err
    assert "Traceback" not in out.err
    if code == 2:
        assert out.err.startswith("physflow: error: ") or out.err.startswith("usage:"), out.err
        assert out.err.strip(), "a usage error must say something"


@FUZZ
@given(arg_text, st.sampled_from(["grid", "zip", "range"]))
def test_cli_scan_axis_options(text, option):
    """--grid/--zip/--range values: axes or a ScanError naming the option, within a second."""
    from physflow.cli.scan import _axis_option, _range_option
    from physflow.scans.axes import ScanError

    start = time.perf_counter()
    try:
        if option == "range":
            _range_option(text)
        else:
            _axis_option(option, text)
    except ScanError as exc:
        assert f"--{option}" in str(exc), str(exc)
    assert time.perf_counter() - start < 1.0
