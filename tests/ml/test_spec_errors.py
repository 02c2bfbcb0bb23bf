"""Bad dataset: sections -> pf.SpecError naming file:line and the key, and the valid choices;
``physflow dataset generate`` exits 2 with that one line. Same checks for Python arguments.

Each file in tests/ml/bad/ starts with ``# expect: TEXT`` (the message must contain it); the
offending line carries the marker ``# <-``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import physflow as pf
from physflow.cli import main

from .ml_stages import OUTPUTS, VARY, pipeline

BAD = Path(__file__).parent / "bad"
FILES = sorted(BAD.glob("*.yaml"))


def expectations(path: Path) -> tuple[str, int]:
    lines = path.read_text().splitlines()
    marked = [i + 1 for i, line in enumerate(lines) if "# <-" in line]
    assert len(marked) == 1, f"{path.name}: mark exactly one line with '# <-'"
    return lines[0].removeprefix("# expect:").strip(), marked[0]


def test_there_are_many_bad_dataset_sections():
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_bad_dataset_section_exit_2_with_line(path, tmp_path, capsys):
    expected, line = expectations(path)
    store = tmp_path / "store"
    code = main(["dataset", "generate", str(path), "--store", str(store), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert f"{path}:{line}:" in err, err
    assert expected in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (store / "datasets").exists()


@pytest.mark.parametrize(
    "stem",
    ["unknown_distribution", "vary_unknown_field", "unknown_key", "outputs_unknown_output"],
)
def test_errors_list_the_valid_choices(stem):
    with pytest.raises(pf.SpecError) as info:
        pf.ml.load_dataset_spec(BAD / f"{stem}.yaml")
    message = str(info.value)
    assert "Did you mean" in message or "valid" in message, message
    assert info.value.line == expectations(BAD / f"{stem}.yaml")[1]


def test_unknown_distribution_names_the_choices():
    with pytest.raises(pf.SpecError) as info:
        pf.ml.load_dataset_spec(BAD / "unknown_distribution.yaml")
    text = str(info.value)
    for kind in ("uniform", "loguniform", "normal", "choice", "randint", "fixed"):
        assert kind in text
    assert info.value.suggestions[0] == "uniform"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"vary": {"signal.amplitude": {"gauss": [0, 1]}}}, "unknown distribution 'gauss'"),
        ({"vary": {"signal.amplitud": {"uniform": [0, 1]}}}, "no field 'amplitud'"),
        ({"vary": {"signal.n": {"normal": [3.0, 1.0]}}}, "randint"),
        ({"outputs": {"x": "signal.wav"}}, "signal.wave"),
        ({"outputs": {}}, "non-empty mapping"),
        ({"split": {"train": 0.5}}, "add up to 1"),
        ({"samples": 0}, "int >= 1"),
        ({"shard_size": 2.5}, "int >= 1"),
        ({"name": "../x"}, "dataset name"),
    ],
)
def test_bad_python_arguments(kwargs, expected, tmp_path):
    args = {"samples": 4, "vary": VARY, "outputs": OUTPUTS, "store": tmp_path / "s"} | kwargs
    with pytest.raises(pf.SpecError) as info:
        pf.ml.generate(pipeline(), **args)
    assert expected in str(info.value)
    assert str(info.value).startswith("pf.ml.generate()")


def test_missing_samples_in_python(tmp_path):
    with pytest.raises(pf.SpecError, match="how many samples"):
        pf.ml.generate(pipeline(), outputs=OUTPUTS, store=tmp_path / "s")


def test_spec_without_dataset_section_needs_arguments(tmp_path):
    spec = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    with pytest.raises(pf.SpecError, match="no dataset: section"):
        pf.ml.generate(spec, store=tmp_path / "s")
    ds = pf.ml.generate(spec, samples=3, outputs={"p": "power"}, store=tmp_path / "s", shard_size=2)
    assert len(ds) == 3 and ds.card.spec_path.endswith("demo.yaml")


def test_plain_run_ignores_the_dataset_section(tmp_path):
    spec = Path(__file__).resolve().parents[2] / "configs" / "optical_dataset.yaml"
    res = pf.load_spec(spec).run(store=tmp_path / "s")
    assert res.ok and res["rx"].shape == (256,)
