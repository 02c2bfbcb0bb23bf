"""Parameter distributions of a dataset's ``vary:`` block, and how drawn values are stored.

Each sample draws its parameters from its own generator (see :mod:`physflow.ml.sampling`), in
sorted path order. Drawn values are stored per shard as one array per parameter: floats as
float64, integers as int64, ``choice`` as the index of the chosen value (the values are listed
in the dataset card). ``fixed`` values are not stored (the card holds them).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

DISTRIBUTIONS = ("uniform", "loguniform", "normal", "choice", "randint", "fixed")


class Uniform(msgspec.Struct, frozen=True, tag="uniform"):
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def probes(self) -> list[Any]:
        # a non-integral value too: a float draw must fit the field (not only round numbers)
        return [self.low, self.low + 0.377 * (self.high - self.low), self.high]


class LogUniform(msgspec.Struct, frozen=True, tag="loguniform"):
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def probes(self) -> list[Any]:
        return [self.low, self.low * (self.high / self.low) ** 0.377, self.high]


class Normal(msgspec.Struct, frozen=True, tag="normal"):
    mean: float
    std: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.normal(self.mean, self.std))

    def probes(self) -> list[Any]:
        return [self.mean, self.mean + 0.377 * self.std]


class Choice(msgspec.Struct, frozen=True, tag="choice"):
    values: list[Any]

    def draw(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def index(self, rng: np.random.Generator) -> int:
        return int(rng.integers(len(self.values)))

    def probes(self) -> list[Any]:
        return list(self.values)


class RandInt(msgspec.Struct, frozen=True, tag="randint"):
    """Integers in [low, high) (high excluded, as numpy's ``integers``)."""

    low: int
    high: int

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high))

    def probes(self) -> list[Any]:
        return [self.low, self.high - 1]


class Fixed(msgspec.Struct, frozen=True, tag="fixed"):
    value: Any

    def draw(self, rng: np.random.Generator) -> Any:
        return self.value

    def probes(self) -> list[Any]:
        return [self.value]


Distribution = Uniform | LogUniform | Normal | Choice | RandInt | Fixed


def stored_dtype(dist: Distribution) -> np.dtype | None:
    """dtype of the per-shard array of drawn values (None: not stored)."""
    if isinstance(dist, Fixed):
        return None
    if isinstance(dist, Choice):
        return np.dtype(np.uint8 if len(dist.values) <= 256 else np.int64)
    if isinstance(dist, RandInt):
        return np.dtype(np.int64)
    return np.dtype(np.float64)


def draw_stored(dist: Distribution, rng: np.random.Generator) -> tuple[Any, Any]:
    """(value handed to the config, value stored in the shard array)."""
    if isinstance(dist, Choice):
        i = dist.index(rng)
        return dist.values[i], i
    value = dist.draw(rng)
    return value, value


def decode_stored(dist: Distribution, stored: Any) -> Any:
    """The parameter value of a sample from its stored entry (numpy scalar when possible)."""
    if isinstance(dist, Fixed):
        return _scalar(dist.value)
    if isinstance(dist, Choice):
        return _scalar(dist.values[int(stored)])
    return stored


def _scalar(value: Any) -> Any:
    array = np.asarray(value)
    return array[()] if array.ndim == 0 and array.dtype != object else value


def parse(kind: str, arg: Any) -> Distribution:
    """Build a distribution from ``{kind: arg}``; ValueError says what the argument must be."""
    if kind == "fixed":
        return Fixed(arg)
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise ValueError("choice needs a non-empty list of values, e.g. {choice: [a, b]}")
        return Choice(list(arg))
    pair = _pair(kind, arg)
    if kind == "randint":
        low, high = pair
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise ValueError("randint needs integers [low, high) (high excluded)")
        if not low < high:
            raise ValueError(f"randint [{low}, {high}) is empty: need low < high")
        return RandInt(low, high)
    a, b = (float(v) for v in pair)
    if not all(math.isfinite(v) for v in (a, b)):
        raise ValueError(f"{kind} needs finite numbers, got {arg!r}")
    if kind == "normal":
        if b <= 0:
            raise ValueError(f"normal [mean, std] needs std > 0, got std={b}")
        return Normal(a, b)
    if not a < b:
        raise ValueError(f"{kind} [low, high] needs low < high, got {arg!r}")
    if kind == "loguniform":
        if a <= 0:
            raise ValueError(f"loguniform [low, high] needs 0 < low, got {arg!r}")
        return LogUniform(a, b)
    return Uniform(a, b)


def _pair(kind: str, arg: Any) -> tuple[Any, Any]:
    what = "[mean, std]" if kind == "normal" else "[low, high]"
    ok = isinstance(arg, list | tuple) and len(arg) == 2
    if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in arg):
        raise ValueError(f"{kind} needs two numbers {what}, got {arg!r}")
    return arg[0], arg[1]


def to_builtins(dist: Distribution) -> dict[str, Any]:
    """``{kind: argument}``, the form written in specs and cards."""
    if isinstance(dist, Fixed):
        return {"fixed": dist.value}
    if isinstance(dist, Choice):
        return {"choice": list(dist.values)}
    if isinstance(dist, Normal):
        return {"normal": [dist.mean, dist.std]}
    kind = {Uniform: "uniform", LogUniform: "loguniform", RandInt: "randint"}[type(dist)]
    return {kind: [dist.low, dist.high]}  # type: ignore[union-attr]
