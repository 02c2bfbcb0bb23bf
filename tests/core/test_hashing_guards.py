"""The digest's guards: cycles, deep nesting and ambiguous dicts are clear errors, never
RecursionError, a hang or an order-dependent digest."""

from __future__ import annotations

import math

import msgspec
import pytest

import physflow as pf
from physflow.core.hashing import UnhashableValueError


class Holder(msgspec.Struct):
    items: list


def test_self_referential_list_names_the_path():
    inner: list = [1, 2]
    inner.append(inner)
    outer = {"config": {"items": [0, inner]}}
    with pytest.raises(UnhashableValueError, match="self-referential list") as info:
        pf.digest(outer)
    assert info.value.path == "['config']['items'][1][2]"
    assert "at value['config']['items'][1][2]" in str(info.value)


def test_self_referential_dict_and_struct():
    d: dict = {}
    d["me"] = d
    with pytest.raises(UnhashableValueError, match="self-referential dict"):
        pf.digest(d)
    h = Holder(items=[])
    h.items.append(h)
    with pytest.raises(UnhashableValueError, match="self-referential Holder") as info:
        pf.digest(h)
    assert info.value.path == ".items[0]"


def test_shared_but_acyclic_containers_are_fine():
    shared = [1, 2]
    assert pf.digest([shared, shared]) == pf.digest([[1, 2], [1, 2]])


def test_deep_nesting_is_a_clear_error():
    value: list = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(UnhashableValueError, match="nested too deeply"):
        pf.digest(value)


def test_unknown_type_error_names_the_field():
    with pytest.raises(UnhashableValueError, match=r"at value\['a'\]\[1\]"):
        pf.digest({"a": [1, object()]})


def test_dict_with_several_nan_keys_is_refused():
    with pytest.raises(UnhashableValueError, match="NaN"):
        pf.digest({math.nan: 1, float("nan"): 2})
    # one NaN key is deterministic
    assert pf.digest({math.nan: 1, 2.0: 3}) == pf.digest({2.0: 3, float("nan"): 1})


def test_error_survives_pickling_with_its_path():
    import pickle

    try:
        pf.digest({"a": object()})
    except UnhashableValueError as exc:
        back = pickle.loads(pickle.dumps(exc))
        assert str(back) == str(exc) and back.path == "['a']"
