"""Stages declaring their outputs every way physflow allows (the single-output convention)."""

from __future__ import annotations

import msgspec

import physflow as pf


class Pair(msgspec.Struct):
    a: int
    b: float


@pf.stage(version="1")
def single() -> int:
    return 7


@pf.stage(version="1")
def single_dict() -> dict:
    return {"a": 1, "b": 2.0}  # one output whose value is a dict


@pf.stage(version="1", outputs=["a"])
def one_named() -> dict:
    return {"a": 1}


@pf.stage(version="1", outputs=["a", "b"])
def two_named() -> dict:
    return {"a": 1, "b": 2.0}


@pf.stage(version="1", outputs=["a", "b"])
def struct_named() -> Pair:
    return Pair(a=1, b=2.0)


@pf.stage(version="1")
def echo(x: object) -> object:
    """Returns what it received, so a test can compare it with ``res[...]``."""
    return x


class Reading(msgspec.Struct, frozen=True):
    """A value type (not a config): a measurement with its metadata."""

    value: float
    unit: str = "V"


@pf.stage(version="1")
def make_reading() -> Reading:
    return Reading(value=2.5)


@pf.stage(version="1")
def reading_value(reading: Reading) -> float:
    """A first parameter annotated with a Struct that is not a Config: an input."""
    return reading.value


class Gain(pf.Config):
    k: float = 2.0


@pf.stage(version="1")
def scaled_reading(cfg: Gain, reading: Reading) -> float:
    """A Struct-annotated input after the config."""
    return cfg.k * reading.value
