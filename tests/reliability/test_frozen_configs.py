"""False hits from values that change after their digest was taken (issue 12, class 1)."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

import physflow as pf

from . import hardening_stages as S


def _pipeline(cfg):
    p = pf.Pipeline("frozen")
    p.add("f", S.fir_sum, cfg)
    return p


def test_list_dict_and_array_fields_cannot_change_in_place(tmp_path):
    cfg = S.Taps(taps=[1.0, 2.0], weights={"a": 1.0}, window=np.ones(4))
    p = _pipeline(cfg)
    assert p.run(store=tmp_path / "s")["f"] == 3.0 + 1.0 + 4.0
    with pytest.raises(TypeError, match="cannot be changed in place"):
        cfg.taps.append(100.0)
    with pytest.raises(TypeError, match="cannot be changed in place"):
        cfg.weights["b"] = 100.0
    with pytest.raises(ValueError, match="read-only"):
        cfg.window[0] = 100.0
    with pytest.raises(ValueError):
        cfg.window.flags.writeable = True
    # the config is unchanged, so the hit is true
    again = p.run(store=tmp_path / "s")
    assert again.hits == ["f"] and again["f"] == 8.0


def test_a_changed_config_is_a_new_config_and_a_miss(tmp_path):
    cfg = S.Taps(taps=[1.0])
    p = _pipeline(cfg)
    p.run(store=tmp_path / "s")
    changed = p.with_values({"f.taps": [1.0, 5.0]})
    res = changed.run(store=tmp_path / "s")
    assert res.misses == ["f"] and res["f"] == 6.0
    replaced = msgspec.structs.replace(cfg, taps=[*cfg.taps, 2.0])
    assert type(replaced.taps).__name__ == "FrozenList"


def test_freezing_changes_no_digest():
    assert pf.digest(S.Taps(taps=[1.0, 2.0]).taps) == pf.digest([1.0, 2.0])
    assert pf.digest(S.Taps(weights={"a": 1.0}).weights) == pf.digest({"a": 1.0})
    assert pf.digest(S.Taps(window=np.arange(3.0)).window) == pf.digest(np.arange(3.0))


def test_yaml_and_converted_configs_are_frozen_too():
    cfg = msgspec.convert({"taps": [1.0]}, S.Taps)
    with pytest.raises(TypeError):
        cfg.taps.append(2.0)


def test_a_mutable_nested_struct_is_refused():
    with pytest.raises(TypeError, match="mutable msgspec Struct"):
        S.HoldsLoose(inner=S.Loose(value=1.0))


def test_a_stage_default_cannot_grow_between_calls(tmp_path):
    p = pf.Pipeline("defaults")
    p.add("c", S.const)
    p.add("g", S.grow_default, x="c")
    res = p.run(store=tmp_path / "s")
    assert res.failed == ["g"] and "cannot be changed in place" in res.errors["g"]
