"""A fixed corpus of values whose digests are pinned in test_golden_digests.py.

Changing how any of these digest changes every user's cache keys: such a change must be
deliberate (bump physflow.core.framing.HASH_FORMAT) and re-pin the digests.
"""

from __future__ import annotations

import collections
import enum
import math

import msgspec
import numpy as np

import physflow as pf


class Colour(enum.Enum):
    RED = 1
    GREEN = "g"


class Level(enum.IntEnum):
    LOW = 1


class GoldenConfig(pf.Config):
    sigma: float = 0.5
    n: int = 3
    name: str = "x"
    taps: tuple[float, ...] = (1.0, -0.0)


class Point(msgspec.Struct):
    x: float
    y: int


def corpus() -> dict[str, object]:
    """name -> value (built fresh on every call)."""
    return {
        "none": None,
        "true": True,
        "false": False,
        "int_0": 0,
        "int_1": 1,
        "int_neg": -7,
        "int_big": 1 << 70,
        "float_0": 0.0,
        "float_neg_0": -0.0,
        "float_1": 1.0,
        "float_nan": math.nan,
        "float_inf": math.inf,
        "complex": 1 + 2j,
        "str_empty": "",
        "str_1": "1",
        "str_unicode": "Å∑ß 🎛",
        "bytes": b"\x00\x01abc",
        "bytearray": bytearray(b"abc"),
        "tuple": (1, "a", 2.5),
        "list": [1, "a", 2.5],
        "nested": {"a": [1, (2, 3)], "b": {"c": None}},
        "dict_order": {"z": 1, "a": 2},
        "set": {3, 1, 2},
        "frozenset": frozenset({"a", "b"}),
        "ordered_dict": collections.OrderedDict([("b", 1), ("a", 2)]),
        "enum": Colour.GREEN,
        "int_enum": Level.LOW,
        "config": GoldenConfig(),
        "struct": Point(x=1.5, y=2),
        "np_float64": np.float64(2.5),
        "np_int8": np.int8(-3),
        "np_nan32": np.float32("nan"),
        "arr_f64": np.arange(6, dtype=np.float64).reshape(2, 3),
        "arr_f32_big_endian": np.arange(4, dtype=">f4"),
        "arr_fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "arr_complex": np.array([1 + 1j, 2 - 1j], dtype=np.complex64),
        "arr_bool": np.array([True, False, True]),
        "arr_empty": np.zeros((0, 3), dtype=np.float64),
        "arr_0d": np.array(7, dtype=np.int64),
        "arr_str": np.array(["ab", "c"]),
        "arr_structured": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
        "arr_large": np.arange(300_000, dtype=np.float32),  # > 1 MiB: the threaded hash path
        "masked": np.ma.masked_array([1.0, 2.0], mask=[False, True]),
    }
