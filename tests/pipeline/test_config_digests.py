"""Remembered config digests (rebuilt Pipelines skip re-digesting plain configs) always equal
the full digest: no two configs that digest differently ever share a remembered entry."""

from __future__ import annotations

import itertools

import numpy as np

import physflow as pf
from physflow.core.hashing import digest
from physflow.pipeline.config_digests import config_digest


class Plain(pf.Config):
    x: float | int | bool | str | None = 0.0
    y: int = 0


class Other(pf.Config):  # same fields, another class
    x: float | int | bool | str | None = 0.0
    y: int = 0


class Wide(pf.Config):
    x: object = None


TRICKY = [0.0, -0.0, 1, 1.0, True, False, 0, "1", "", None, float("inf"), float("nan"), 2**63]


def test_remembered_digests_equal_full_digests_and_never_collide():
    seen: dict[str, str] = {}
    for cls, x, y in itertools.product((Plain, Other), TRICKY[:-1], (0, 1, -1)):
        cfg = cls(x=x, y=y)
        for _ in range(2):  # the second call is served from memory
            got = config_digest(cfg)
            assert got == digest(cfg), (cls, x, y)
        seen.setdefault(got, repr(cfg))
    # -0.0/0.0, 1/1.0/True, 0/False, the two classes: all distinct digests
    assert len(seen) == 2 * (len(TRICKY) - 1) * 3


def test_configs_outside_the_plain_scalars_are_digested_every_time():
    values = [2**70, np.float64(1.5), np.int64(3), b"1", (1, 2), Plain(x=1.0)]
    for value in values:
        cfg = Wide(x=value)
        assert config_digest(cfg) == digest(cfg), value
    assert config_digest(Wide(x=np.float64(1.5))) != config_digest(Wide(x=1.5))
    assert config_digest(None) == digest(None)


def test_a_redefined_class_with_the_same_name_is_not_confused():
    def make(default_y: int):
        class Plain(pf.Config):  # same qualified name each time
            x: float = 0.0
            y: int = default_y

        return Plain

    a, b = make(0), make(5)
    assert config_digest(a(x=1.0)) == digest(a(x=1.0))
    assert config_digest(b(x=1.0)) == digest(b(x=1.0))
    assert config_digest(a(x=1.0)) != config_digest(b(x=1.0))


def test_a_rebuilt_pipeline_plans_the_same_keys(tmp_path):
    from tests.pipeline.counting_stages import source

    def build() -> pf.Pipeline:
        p = pf.Pipeline("rebuilt", seed=1)
        for i in range(5):
            p.add(f"n{i}", source, {"value": float(i)})
        return p

    first = build().run(store=tmp_path / "s")
    again = build().run(store=tmp_path / "s")
    assert again.misses == [] and first.misses == [f"n{i}" for i in range(5)]
    assert {n: again.digest(n) for n in again.hits} == {n: first.digest(n) for n in first.misses}
