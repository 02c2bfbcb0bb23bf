"""Scan axes -> points: grid (cartesian), zip, explicit points and seeded random / Sobol samples.

A scan is described once, as :class:`ScanPoints`: the dataset's dimensions and coordinates and,
for every point in C order of the dataset's shape, the parameter values (``"node.field"`` paths
and the special path ``"seed"``). Values are validated later, when configs are built.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..pipeline.graph import PipelineError

SEED_AXIS = "seed"
POINT_DIM = "point"
SAMPLE_METHODS = ("sobol", "halton", "lhs", "random")


class ScanError(PipelineError):
    """A scan is malformed; the message names the axis/option and says how to fix it."""


@dataclass
class ScanPoints:
    """Every point of a scan and how they lay out as an N-D dataset."""

    mode: str
    paths: list[str]  # parameter paths, in axis order ("seed" included when scanned)
    dims: list[str]  # dataset dimensions: the paths (grid) or ["point"]
    shape: tuple[int, ...]
    coords: dict[str, tuple[str, list[Any]]]  # coordinate name -> (dim, values)
    values: list[tuple[Any, ...]]  # per point: one value per path
    index: list[tuple[int, ...]]  # per point: position of each value in its axis (config cache)
    sample: dict[str, Any] | None = None  # the sampling request, recorded in the manifest
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    def point_values(self, i: int) -> dict[str, Any]:
        return dict(zip(self.paths, self.values[i]))

    def position(self, i: int) -> list[int]:
        """Position of point ``i`` in the dataset (grid indices, or ``[i]`` along "point")."""
        if self.mode == "grid":
            return [int(x) for x in self.index[i]]
        return [i]


def _as_list(path: str, values: Any) -> list[Any]:
    if isinstance(values, np.ndarray):
        return values.tolist() if values.ndim == 1 else [values]
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | range):
        raise ScanError(
            f"scan axis '{path}': values must be a list, got {type(values).__qualname__} "
            f"{values!r}. Write e.g. {{'{path}': [{values!r}]}} for a single value."
        )
    values = [plain(v) for v in values]
    if not values:
        raise ScanError(f"scan axis '{path}': the list of values is empty; give at least one.")
    return values


def plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (configs and coordinates expect plain numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_path(path: Any) -> str:
    if not isinstance(path, str) or (path != SEED_AXIS and "." not in path):
        raise ScanError(
            f"scan axis {path!r} is not a parameter path; write 'node.field' (nested: "
            "'node.a.b') or 'seed'."
        )
    return path


def _check_seeds(path: str, values: list[Any]) -> list[Any]:
    if path != SEED_AXIS:
        return values
    out = []
    for v in values:
        if isinstance(v, float | np.floating) and float(v).is_integer():
            v = int(v)  # 3.0 from lin:1:20:20 or YAML is the seed 3
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or int(v) < 0:
            raise ScanError(f"scan axis 'seed': seeds must be ints >= 0, got {v!r}.")
        out.append(int(v))
    return out


def _hashable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return (type(value).__name__, value)


def _check_unique(path: str, values: list[Any]) -> None:
    try:
        if len(set(values)) == len(values):
            return
    except TypeError:  # unhashable values (lists, arrays): compare canonical forms
        pass
    seen: set[Any] = set()
    for v in values:
        h = _hashable(v)
        if h in seen:
            raise ScanError(
                f"scan axis '{path}' lists the value {v!r} twice; grid coordinates must be "
                "unique. Remove the duplicate."
            )
        seen.add(h)


def grid_points(axes: Mapping[str, Any]) -> ScanPoints:
    paths = [_check_path(p) for p in axes]
    lists = [_check_seeds(p, _as_list(p, axes[p])) for p in paths]
    for path, values in zip(paths, lists):
        _check_unique(path, values)
    shape = tuple(len(v) for v in lists)
    index = list(itertools.product(*(range(n) for n in shape)))
    values = [tuple(lists[a][i] for a, i in enumerate(idx)) for idx in index]
    coords = {p: (p, v) for p, v in zip(paths, lists)}
    return ScanPoints("grid", paths, list(paths), shape, coords, values, index)


def zip_points(axes: Mapping[str, Any]) -> ScanPoints:
    paths = [_check_path(p) for p in axes]
    lists = [_check_seeds(p, _as_list(p, axes[p])) for p in paths]
    lengths = {p: len(v) for p, v in zip(paths, lists)}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"'{p}': {n}" for p, n in lengths.items())
        raise ScanError(
            f"mode='zip' pairs values position by position, so every axis needs the same "
            f"number of values; got {detail}. Use mode='grid' for the cartesian product."
        )
    n = len(lists[0]) if lists else 0
    values = [tuple(v[i] for v in lists) for i in range(n)]
    index = [(i,) * len(paths) for i in range(n)]
    return _point_dim("zip", paths, values, index)


def _point_dim(
    mode: str, paths: list[str], values: list[tuple[Any, ...]], index: list[tuple[int, ...]]
) -> ScanPoints:
    coords: dict[str, tuple[str, list[Any]]] = {POINT_DIM: (POINT_DIM, list(range(len(values))))}
    for a, path in enumerate(paths):
        coords[path] = (POINT_DIM, [v[a] for v in values])
    return ScanPoints(mode, paths, [POINT_DIM], (len(values),), coords, values, index)


def explicit_points(points: Sequence[Mapping[str, Any]]) -> ScanPoints:
    if isinstance(points, Mapping) or not isinstance(points, Sequence) or not points:
        raise ScanError(
            "points must be a non-empty list of {'node.field': value, ...} mappings, one per point."
        )
    first = points[0]
    if not isinstance(first, Mapping) or not first:
        raise ScanError(
            f"points[0] must be a non-empty mapping of 'node.field' -> value, got {first!r}."
        )
    paths = [_check_path(p) for p in first]
    values = []
    for i, point in enumerate(points):
        if not isinstance(point, Mapping) or set(point) != set(paths):
            got = sorted(point) if isinstance(point, Mapping) else repr(point)
            raise ScanError(
                f"points[{i}] sets {got}, but points[0] sets {sorted(paths)}; every point must "
                "set the same parameters (repeat the base value where it does not change)."
            )
        row = tuple(plain(point[p]) for p in paths)
        if SEED_AXIS in paths:
            _check_seeds(SEED_AXIS, [point[SEED_AXIS]])
        values.append(row)
    index = [(i,) * len(paths) for i in range(len(values))]
    return _point_dim("points", paths, values, index)


@dataclass(frozen=True)
class _Range:
    low: float
    high: float
    log: bool
    integer: bool


def _parse_range(path: str, spec: Any) -> _Range:
    where = f"sample range '{path}'"
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"low", "high", "log", "integer"}
        if unknown or "low" not in spec or "high" not in spec:
            raise ScanError(
                f"{where}: write [low, high] or {{low: .., high: .., log: false, integer: "
                f"false}}; got keys {sorted(spec)}."
            )
        low, high = spec["low"], spec["high"]
        log, integer = bool(spec.get("log", False)), bool(spec.get("integer", False))
    elif isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2:
        low, high = spec
        log = integer = False
    else:
        raise ScanError(
            f"{where}: write [low, high] or {{low: .., high: .., log: true}}; got {spec!r}."
        )
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ScanError(f"{where}: low and high must be numbers, got {spec!r}.") from None
    if not low < high:
        raise ScanError(f"{where}: low ({low}) must be smaller than high ({high}).")
    if log and low <= 0:
        raise ScanError(f"{where}: a log range needs low > 0, got {low}.")
    if path == SEED_AXIS:
        integer = True
        if low < 0:
            raise ScanError(f"{where}: seeds are >= 0, got low={low}.")
    return _Range(low, high, log, integer)


def sample_points(sample: Mapping[str, Any]) -> ScanPoints:
    """Seeded random / quasi-random samples of ranges (dimension "point")."""
    known = {"n", "method", "seed", "ranges"}
    if not isinstance(sample, Mapping) or set(sample) - known or "ranges" not in sample:
        got = sorted(sample) if isinstance(sample, Mapping) else repr(sample)
        raise ScanError(
            "sample must be {n: 64, method: sobol|halton|lhs|random, seed: 0, ranges: "
            f"{{'node.field': [low, high]}}}}; got {got}."
        )
    n = sample.get("n", 16)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ScanError(f"sample.n must be an int >= 1, got {n!r}.")
    method = sample.get("method", "sobol")
    if method not in SAMPLE_METHODS:
        raise ScanError(f"sample.method {method!r} is not one of {', '.join(SAMPLE_METHODS)}.")
    seed = sample.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ScanError(f"sample.seed must be an int >= 0, got {seed!r}.")
    ranges = sample["ranges"]
    if not isinstance(ranges, Mapping) or not ranges:
        raise ScanError("sample.ranges must map 'node.field' paths to [low, high].")
    paths = [_check_path(p) for p in ranges]
    parsed = [_parse_range(p, ranges[p]) for p in paths]
    unit = _unit_samples(method, n, len(paths), seed)
    columns = []
    for a, r in enumerate(parsed):
        u = unit[:, a]
        if r.log:
            col = 10 ** (math.log10(r.low) + u * (math.log10(r.high) - math.log10(r.low)))
        else:
            col = r.low + u * (r.high - r.low)
        if r.integer:
            col = np.clip(np.floor(col), r.low, r.high - 1 if r.high - 1 >= r.low else r.low)
            columns.append([int(x) for x in col])
        else:
            columns.append([float(x) for x in col])
    values = [tuple(c[i] for c in columns) for i in range(n)]
    index = [(i,) * len(paths) for i in range(n)]
    points = _point_dim("sample", paths, values, index)
    points.sample = {
        "n": n,
        "method": method,
        "seed": seed,
        "ranges": {p: [r.low, r.high] for p, r in zip(paths, parsed)},
    }
    return points


def _unit_samples(method: str, n: int, d: int, seed: int) -> np.ndarray:
    if method == "random":
        return np.random.Generator(np.random.PCG64(seed)).random((n, d))
    import warnings

    from scipy.stats import qmc

    if method == "sobol":
        engine: Any = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(seed))
    elif method == "halton":
        engine = qmc.Halton(d, scramble=True, rng=np.random.default_rng(seed))
    else:
        engine = qmc.LatinHypercube(d, rng=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Sobol's "n should be a power of 2" balance note
        return engine.random(n)


def build_points(
    axes: Any = None, mode: str = "grid", points: Any = None, sample: Any = None
) -> ScanPoints:
    """One entry point for every way of describing a scan (exactly one must be given)."""
    if isinstance(axes, Sequence) and not isinstance(axes, str) and points is None:
        axes, points = None, axes  # a list of dicts is an explicit point list
    given = [
        name
        for name, v in (("axes", axes), ("points", points), ("sample", sample))
        if v is not None and (not isinstance(v, Mapping) or v)
    ]
    if len(given) != 1:
        raise ScanError(
            "describe the scan in exactly one way: axes={'node.field': [...]} (mode='grid' or "
            "'zip'), points=[{...}, ...] or sample={...}; got "
            f"{' and '.join(given) if given else 'none'}."
        )
    if given == ["points"]:
        return explicit_points(points)
    if given == ["sample"]:
        return sample_points(sample)
    if not isinstance(axes, Mapping):
        raise ScanError(f"axes must map 'node.field' paths to lists of values, got {axes!r}.")
    if mode == "grid":
        return grid_points(axes)
    if mode == "zip":
        return zip_points(axes)
    raise ScanError(f"mode {mode!r} is not valid for axes; use 'grid' or 'zip'.")
