"""Identity-derived randomness: per-sample seeds and parameters, split assignment.

Sample ``i`` of a dataset with seed ``s`` owns the generator
``Generator(PCG64(SeedSequence(s, spawn_key=(i,))))``. Its first draw is the sample's run seed
(an int in [0, 2**63)); then each varied parameter is drawn in sorted path order. The pipeline
then runs as ``pipeline.with_values(params, seed=run_seed)`` would: every node that asks for
``rng`` gets ``SeedSequence(run_seed, spawn_key=spawn_key(node_id))``. Nothing depends on the
shard size, the executor, the worker or the order in which samples are generated.

Splits: ``u = splitmix64(i + key(s)) / 2**64`` compared with the cumulative split fractions
(split names in sorted order), so a sample's split never changes when the dataset grows.
"""

from __future__ import annotations

from typing import Any

import blake3
import numpy as np

from .distributions import Distribution, draw_stored

RUN_SEED_BOUND = 1 << 63


def sample_generator(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(index,))))


def draw(
    seed: int, index: int, vary: list[tuple[str, Distribution]]
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(run seed, {path: value for the config}, {path: value stored in the shard}).

    ``vary`` must be in sorted path order (see :func:`ordered`)."""
    rng = sample_generator(seed, index)
    run_seed = int(rng.integers(0, RUN_SEED_BOUND))
    values: dict[str, Any] = {}
    stored: dict[str, Any] = {}
    for path, dist in vary:
        values[path], stored[path] = draw_stored(dist, rng)
    return run_seed, values, stored


def ordered(vary: dict[str, Distribution]) -> list[tuple[str, Distribution]]:
    return sorted(vary.items())


# -- splits ---------------------------------------------------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _split_key(seed: int) -> np.uint64:
    raw = blake3.blake3(f"physflow.ml.split.v1:{int(seed)}".encode()).digest(length=8)
    return np.uint64(int.from_bytes(raw, "little"))


def split_uniform(seed: int, indices: np.ndarray) -> np.ndarray:
    """A uniform number in [0, 1) per sample id, from (seed, id) only (vectorised)."""
    with np.errstate(over="ignore"):
        z = np.asarray(indices, dtype=np.uint64) + _split_key(seed) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def split_names(split: dict[str, float]) -> list[str]:
    return sorted(split)


def assign_splits(seed: int, split: dict[str, float], indices: np.ndarray) -> np.ndarray:
    """Index into :func:`split_names` of each sample's split."""
    names = split_names(split)
    bounds = np.cumsum([split[n] for n in names])
    bounds[-1] = np.inf  # rounding of the fractions never leaves a sample without a split
    return np.searchsorted(bounds, split_uniform(seed, indices), side="right").astype(np.int64)
