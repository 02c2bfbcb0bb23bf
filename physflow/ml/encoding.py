"""How a shard's samples become arrays (sample dimension first), and back.

Per shard and output field:

- **fixed**: every sample has the same shape -> one array ``name`` of shape ``(n, *shape)``;
- **ragged**: shapes differ -> ``name`` holds the samples' C-order values concatenated (1-d),
  ``name/offsets`` (int64, ``n + 1``) where sample ``k`` starts and ends in it, and, for samples
  of 2 or more dimensions, ``name/shapes`` (int64, ``(n, ndim)``).

Drawn parameters are stored as ``params/<node.field>`` arrays of ``n`` entries (see
:mod:`physflow.ml.distributions`). The choice between fixed and ragged is made per shard from
the samples themselves, so it never depends on generation order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .distributions import Distribution, decode_stored, stored_dtype

PARAM_PREFIX = "params/"


class EncodingError(ValueError):
    """Samples of one field cannot be stored together (dtype or rank differs)."""


class Ragged:
    """Variable-shape samples: flat values + offsets (+ shapes)."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray, shapes: np.ndarray | None):
        self.values, self.offsets, self.shapes = values, offsets, shapes

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, k: int) -> np.ndarray:
        flat = self.values[self.offsets[k] : self.offsets[k + 1]]
        return flat if self.shapes is None else flat.reshape(self.shapes[k])

    def take(self, rows: np.ndarray) -> list[np.ndarray]:
        return [self[int(k)] for k in rows]


def encode_field(name: str, arrays: list[np.ndarray], start: int) -> dict[str, np.ndarray]:
    """Arrays stored for one field of a shard whose first sample is ``start``."""
    first = arrays[0]
    for k, a in enumerate(arrays):
        if a.dtype != first.dtype:
            raise EncodingError(
                f"output field '{name}': sample {start + k} has dtype {a.dtype}, sample "
                f"{start} has {first.dtype}; a field needs one dtype (cast in the stage)"
            )
    if all(a.shape == first.shape for a in arrays):
        return {name: np.stack(arrays)}
    if any(a.ndim != first.ndim for a in arrays):
        bad = next(k for k, a in enumerate(arrays) if a.ndim != first.ndim)
        raise EncodingError(
            f"output field '{name}': sample {start + bad} has {arrays[bad].ndim} dimensions, "
            f"sample {start} has {first.ndim}; ragged fields need the same rank"
        )
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    out = {
        name: np.concatenate([a.ravel() for a in arrays]) if arrays else first.ravel(),
        f"{name}/offsets": offsets,
    }
    if first.ndim != 1:
        out[f"{name}/shapes"] = np.array([a.shape for a in arrays], dtype=np.int64)
    return out


def encode_shard(
    samples: list[dict[str, np.ndarray]],
    params: list[dict[str, Any]],
    fields: list[str],
    vary: dict[str, Distribution],
    start: int,
) -> dict[str, np.ndarray]:
    """All arrays of a shard, by name."""
    out: dict[str, np.ndarray] = {}
    for name in fields:
        out.update(encode_field(name, [s[name] for s in samples], start))
    for path, dist in sorted(vary.items()):
        dtype = stored_dtype(dist)
        if dtype is not None:
            out[PARAM_PREFIX + path] = np.array([p[path] for p in params], dtype=dtype)
    return out


def layout(arrays: dict[str, Any], fields: list[str]) -> dict[str, str]:
    return {f: "ragged" if f"{f}/offsets" in arrays else "fixed" for f in fields}


def count(arrays: dict[str, Any], fields: list[str]) -> int:
    """Number of samples in a shard, from its arrays (``name -> array or shape``)."""
    name = fields[0]
    if f"{name}/offsets" in arrays:
        return int(_shape(arrays[f"{name}/offsets"])[0]) - 1
    return int(_shape(arrays[name])[0])


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


class ShardData:
    """A decoded shard: per-field arrays (or :class:`Ragged`) and stored parameters."""

    def __init__(
        self, arrays: dict[str, np.ndarray], fields: list[str], vary: dict[str, Distribution]
    ) -> None:
        self.fields: dict[str, Any] = {}
        for name in fields:
            if f"{name}/offsets" in arrays:
                self.fields[name] = Ragged(
                    arrays[name], arrays[f"{name}/offsets"], arrays.get(f"{name}/shapes")
                )
            else:
                self.fields[name] = arrays[name]
        self.vary = vary
        self.params = {p: arrays.get(PARAM_PREFIX + p) for p in vary}
        self.n = count(arrays, fields)

    def sample(self, k: int) -> dict[str, Any]:
        out: dict[str, Any] = {name: value[k] for name, value in self.fields.items()}
        for path, dist in self.vary.items():
            stored = self.params[path]
            out[path] = decode_stored(dist, None if stored is None else stored[k])
        return out

    def take(self, rows: np.ndarray) -> dict[str, Any]:
        """Columns of the given rows: arrays for fixed fields, lists for ragged ones."""
        out: dict[str, Any] = {}
        for name, value in self.fields.items():
            out[name] = value.take(rows) if isinstance(value, Ragged) else value[rows]
        for path, dist in self.vary.items():
            out[path] = param_column(dist, self.params[path], rows)
        return out

    def samples(self) -> list[dict[str, np.ndarray]]:
        return [{name: value[k] for name, value in self.fields.items()} for k in range(self.n)]

    def stored_params(self) -> list[dict[str, Any]]:
        return [{p: a[k] for p, a in self.params.items() if a is not None} for k in range(self.n)]


def param_column(dist: Distribution, stored: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """Parameter values of ``rows`` as one array (choice indices decoded)."""
    from .distributions import Choice, Fixed

    if isinstance(dist, Fixed):
        return np.asarray([dist.value] * len(rows))
    assert stored is not None
    picked = stored[rows]
    if isinstance(dist, Choice):
        return np.asarray(dist.values)[picked.astype(np.int64)]
    return picked
