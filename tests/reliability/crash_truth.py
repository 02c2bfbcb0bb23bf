"""The value of every node of :mod:`.crash_stages`' pipelines, computed with plain numpy on the
same seeds (no physflow, no stage function), and exact comparison against it."""

from __future__ import annotations

from typing import Any

import numpy as np


def _normal(seed: Any, shape: Any) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def crash_values(trial: int, n: int = 1 << 18) -> dict[str, Any]:
    """``{"node" or "node.output": value}`` for ``crash_pipeline(trial, n)``."""
    seeds = [3 * trial + k for k in range(3)]
    out: dict[str, Any] = {}
    for s in seeds:
        g = _normal(s, n)
        out[f"g{s}"], out[f"s{s}"] = g, g * 1.5
        out[f"t{s}"] = float(np.sum(g * 1.5))
    rows, cols, chunk = 512, 512, 32
    field = np.concatenate(
        [_normal([trial, i], (chunk, cols)).astype(np.float32) for i in range(rows // chunk)]
    )
    out["field.field"], out["field.rows"] = field, rows
    out["means"] = field.astype(np.float64).mean(axis=1)
    mix = out[f"s{seeds[0]}"] - 2.0 * out[f"g{seeds[1]}"]
    out["mix"] = mix
    out["halves.lo"], out["halves.hi"] = mix[: n // 2], mix[n // 2 :][::-1]
    out["blob"] = out[f"g{seeds[2]}"][:8192].tobytes()
    out["mixsum"] = float(np.sum(out["halves.hi"]))
    return out


def overlap_values(seeds: tuple[int, ...], factor: float, n: int = 1 << 16) -> dict[str, Any]:
    """``{node: value}`` for ``overlap_pipeline(seeds, factor, n)``."""
    out: dict[str, Any] = {}
    for s in seeds:
        g = _normal(s, n)
        out[f"g{s}"], out[f"s{s}"] = g, g * factor
        out[f"t{s}"] = float(np.sum(g * factor))
    out["mix"] = out[f"s{seeds[0]}"] - 2.0 * out[f"g{seeds[-1]}"]
    out["mixsum"] = float(np.sum(out["mix"]))
    return out


def same(value: Any, expected: Any) -> bool:
    """Exact equality: same type family, same bytes (arrays: dtype, shape and every element;
    xarray values: ``identical``, names, attributes and coordinates included)."""
    if type(expected).__module__.startswith("xarray"):
        return type(value) is type(expected) and bool(value.load().identical(expected))
    if isinstance(expected, np.ndarray):
        value = np.asarray(value)
        return value.dtype == expected.dtype and np.array_equal(value, expected)
    if isinstance(expected, float):
        return isinstance(value, float) and value == expected
    return type(value) is type(expected) and value == expected


def matrix_values(seed: int = 0) -> dict[str, Any]:
    """``{ref: value}`` for ``corruption_cases.matrix_pipeline()`` with ``g.seed = seed``."""
    import xarray as xr

    g = _normal(seed, 1 << 14)
    field = np.concatenate([_normal([7, i], (16, 64)).astype(np.float32) for i in range(4)])
    n = len(g) // 4
    ds = xr.Dataset(
        {"v": (("t",), g[:n], {"units": "V"}), "w": (("t",), g[n : 2 * n] ** 2)},
        coords={"t": np.arange(n, dtype=np.int64)},
        attrs={"title": "reliability", "scale": 2.5},
    )
    return {
        "g": g,
        "t": float(np.sum(g)),
        "field.field": field,
        "field.rows": 64,
        "means": field.astype(np.float64).mean(axis=1),
        "blob": g[:8192].tobytes(),
        "ds": ds,
    }
