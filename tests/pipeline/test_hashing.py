"""Property tests of value digests: equal values agree, any meaningful change disagrees."""

from __future__ import annotations

import enum
import math

import hypothesis.extra.numpy as hnp
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import physflow as pf
from physflow.core.hashing import UnhashableValueError

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=12,
)


def _copy(value):
    """An equal value built from fresh objects (no identity shared with the original)."""
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    if isinstance(value, dict):
        return {_copy(k): _copy(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, bytes):
        return bytes(bytearray(value))
    if isinstance(value, str):
        return "".join(list(value))
    return value


@given(values)
def test_equal_values_equal_digests(value):
    assert pf.digest(value) == pf.digest(_copy(value))


@given(values, values)
def test_different_values_different_digests(a, b):
    def same(x, y):
        # NaNs are one value; -0.0 and 0.0 are different values; 1 and True are different.
        if type(x) is not type(y):
            return False
        if isinstance(x, float):
            return (math.isnan(x) and math.isnan(y)) or (
                x == y and math.copysign(1, x) == math.copysign(1, y)
            )
        if isinstance(x, list | tuple):
            return len(x) == len(y) and all(same(i, j) for i, j in zip(x, y))
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        return x == y

    assert (pf.digest(a) == pf.digest(b)) == same(a, b)


def test_type_tags_separate_lookalikes():
    lookalikes = [1, 1.0, "1", True, b"1", (1,), [1], np.int64(1), np.float64(1.0), np.array(1)]
    digests = [pf.digest(v) for v in lookalikes]
    assert len(set(digests)) == len(lookalikes)


def test_float_bits():
    assert pf.digest(0.0) != pf.digest(-0.0)
    assert pf.digest(float("nan")) == pf.digest(-float("nan")) == pf.digest(math.nan)
    assert pf.digest(0.1 + 0.2) != pf.digest(0.3)


def test_dict_order_independent_list_order_dependent():
    assert pf.digest({"a": 1, "b": 2}) == pf.digest({"b": 2, "a": 1})
    assert pf.digest([1, 2]) != pf.digest([2, 1])
    assert pf.digest({"a": 1}) != pf.digest({"a": 1.0})


array_strategy = hnp.arrays(
    dtype=st.one_of(
        hnp.integer_dtypes(endianness="="),
        hnp.floating_dtypes(endianness="="),
        hnp.complex_number_dtypes(endianness="="),
        hnp.boolean_dtypes(),
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning", "ignore::RuntimeWarning")
@settings(max_examples=150)
@given(array_strategy)
def test_array_changes_change_digest(arr):
    d = pf.digest(arr)
    assert pf.digest(arr.copy()) == d
    # non-contiguous view with the same values digests like its contiguous copy
    if arr.ndim >= 1 and arr.size:
        fortran = np.asfortranarray(arr)
        assert pf.digest(fortran) == d
    # dtype with another byte order
    if arr.dtype.itemsize > 1:
        swapped = arr.astype(arr.dtype.newbyteorder())
        assert pf.digest(swapped) != d
    # another dtype
    other = np.int8 if arr.dtype != np.int8 else np.int16
    if arr.size:
        assert pf.digest(arr.astype(other)) != d
    # another shape with the same bytes
    if arr.ndim >= 1:
        assert pf.digest(arr.reshape((1, *arr.shape))) != d
    # one element changed
    if arr.size:
        flat = arr.copy().reshape(-1)
        if arr.dtype == np.bool_:
            flat[0] = not flat[0]
        else:
            flat.view(np.uint8)[0] ^= 1
        assert pf.digest(flat.reshape(arr.shape)) != d


class Mode(enum.Enum):
    A = "a"
    B = "b"


class Inner(pf.Config):
    gain: float = 1.0


class Outer(pf.Config):
    inner: Inner = Inner()
    taps: tuple[float, ...] = (1.0,)
    mode: Mode = Mode.A
    weights: object = None


class OuterTwin(pf.Config):
    inner: Inner = Inner()
    taps: tuple[float, ...] = (1.0,)
    mode: Mode = Mode.A
    weights: object = None


def test_struct_digest_fields_and_class_identity():
    base = Outer()
    assert pf.digest(base) == pf.digest(Outer())
    assert pf.digest(base) != pf.digest(Outer(inner=Inner(gain=2.0)))
    assert pf.digest(base) != pf.digest(Outer(taps=(1.0, 0.0)))
    assert pf.digest(base) != pf.digest(Outer(mode=Mode.B))
    assert pf.digest(base) != pf.digest(OuterTwin())


def test_arrays_inside_configs_hash_by_content():
    a = np.zeros(10_000)
    b = a.copy()
    b[5_000] = 1e-300
    assert pf.digest(Outer(weights=a)) != pf.digest(Outer(weights=b))
    assert pf.digest(Outer(weights=a)) == pf.digest(Outer(weights=a.copy()))


def test_large_array_uses_same_rule_as_small():
    big = np.arange(2_000_000, dtype=np.float64)  # above the multithreaded threshold
    assert pf.digest(big) == pf.digest(big.copy())
    changed = big.copy()
    changed[-1] += 1
    assert pf.digest(big) != pf.digest(changed)


def test_unknown_type_is_a_clear_error():
    class Opaque:
        pass

    with pytest.raises(UnhashableValueError, match="Opaque"):
        pf.digest(Opaque())
    with pytest.raises(UnhashableValueError, match="object"):
        pf.digest(np.array([object()]))


def test_protocol_hook():
    class Custom:
        def __init__(self, x):
            self.x = x

        def __physflow_digest__(self):
            return str(self.x)

    assert pf.digest(Custom(1)) == pf.digest(Custom(1))
    assert pf.digest(Custom(1)) != pf.digest(Custom(2))
    assert pf.digest(Custom(1)) != pf.digest("1")


def test_config_is_strict_and_frozen():
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.convert({"gain": 1.0, "gian": 2.0}, Inner)
    cfg = Inner()
    with pytest.raises(AttributeError):
        cfg.gain = 3.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Inner(1.0)  # type: ignore[misc]  # keyword-only
