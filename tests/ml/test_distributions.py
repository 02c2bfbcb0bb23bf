"""Drawn parameters follow their distributions, derive from (seed, index) only, and land in the
configs the stages see; ``fixed`` values are constants not stored per sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

import physflow as pf
from physflow.ml import distributions as dists
from physflow.ml import sampling

from .ml_stages import OUTPUTS, pipeline

N = 4000


def draws(dist, n=N, seed=1):
    vary = [("a.b", dist)]
    return np.array([sampling.draw(seed, i, vary)[1]["a.b"] for i in range(n)])


def test_uniform_and_loguniform_moments():
    u = draws(dists.Uniform(2.0, 5.0))
    assert u.min() >= 2.0 and u.max() < 5.0
    assert abs(u.mean() - 3.5) < 5 * 3 / math.sqrt(12 * N)
    lu = np.log(draws(dists.LogUniform(0.01, 1.0)))
    lo, hi = math.log(0.01), math.log(1.0)
    assert lu.min() >= lo and lu.max() <= hi
    assert abs(lu.mean() - (lo + hi) / 2) < 5 * (hi - lo) / math.sqrt(12 * N)


def test_normal_moments():
    x = draws(dists.Normal(1.5, 0.25))
    assert abs(x.mean() - 1.5) < 5 * 0.25 / math.sqrt(N)
    assert abs(x.std() - 0.25) < 5 * 0.25 / math.sqrt(2 * N)


def test_randint_and_choice_counts():
    k = draws(dists.RandInt(3, 7))
    assert set(k.tolist()) == {3, 4, 5, 6}
    c = draws(dists.Choice(["a", "b", "c"]))
    for value in "abc":
        count = int(np.sum(c == value))
        assert abs(count - N / 3) < 5 * math.sqrt(N * (1 / 3) * (2 / 3))


def test_draws_depend_only_on_seed_and_index():
    vary = [("a.b", dists.Uniform(0, 1)), ("c.d", dists.Choice([1, 2, 3]))]
    assert sampling.draw(4, 17, vary) == sampling.draw(4, 17, vary)
    assert sampling.draw(4, 17, vary) != sampling.draw(4, 18, vary)
    assert sampling.draw(4, 17, vary) != sampling.draw(5, 17, vary)
    # the run seed is the first draw: adding a parameter never changes a sample's noise
    assert sampling.draw(4, 17, vary)[0] == sampling.draw(4, 17, [])[0]


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ({"uniform": [0, 1]}, dists.Uniform),
        ({"loguniform": [0.1, 1]}, dists.LogUniform),
        ({"normal": [0, 1]}, dists.Normal),
        ({"choice": [1, 2]}, dists.Choice),
        ({"randint": [0, 4]}, dists.RandInt),
        ({"fixed": [1, 2]}, dists.Fixed),
        (0.5, dists.Fixed),
    ],
)
def test_spec_forms_round_trip(spec, kind):
    from physflow.ml.spec import parse_distribution, python_errors

    dist = parse_distribution(spec, python_errors(), ("generate", "vary", "x.y"))
    assert isinstance(dist, kind)
    assert parse_distribution(dists.to_builtins(dist), python_errors(), ("g",)) == dist


def test_parameters_reach_the_configs_and_fixed_is_not_stored(tmp_path):
    vary = {
        "signal.n": {"randint": [8, 12]},
        "signal.offset": 0.25,
        "signal.kind": {"choice": ["sine", "square"]},
        "noisy.sigma": {"normal": [0.1, 0.01]},
    }
    ds = pf.ml.generate(pipeline(), samples=24, shard_size=8, vary=vary, outputs=OUTPUTS,
                        store=tmp_path / "s", progress=False)  # fmt: skip
    assert ds.card.fields["x"].shape == [None] and ds.card.fields["x"].ragged
    assert "params/signal.offset" not in ds.card.shards[0].arrays
    assert ds.card.params["signal.n"].dtype == "<i8"
    for i in range(24):
        sample = ds[i]
        assert sample["x"].shape == (sample["signal.n"],)
        assert sample["signal.offset"] == 0.25
        for path, value in ds.params(i).items():  # recomputed from the seed == stored
            assert sample[path] == value
        cfg = ds.sample_pipeline(i, pipeline()).nodes["signal"].config
        assert (cfg.n, cfg.offset, cfg.kind) == (sample["signal.n"], 0.25, sample["signal.kind"])
