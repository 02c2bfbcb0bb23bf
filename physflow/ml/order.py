"""Epoch order and its partition across ranks and DataLoader workers (no torch here).

**Global order** of epoch ``e`` (depends only on the dataset view, ``seed``, ``e``, ``shuffle``
and ``buffer``): the shards holding samples of the view are permuted by
``Generator(PCG64(SeedSequence(seed, spawn_key=(e, ORDER_TAG))))``; consecutive groups of
``buffer`` shards form *blocks*; the samples of each block are permuted with the same
generator. Without shuffling, shards and samples keep their natural order (blocks of 1 shard).

**Partition**: positions ``p >= start`` of the global order are cut into *units* of ``unit``
consecutive positions (the batch size); unit ``u`` goes to rank ``u % world_size`` and, on that
rank, to DataLoader worker ``(u // world_size) % num_workers``. A DataLoader collects batches
from its workers round-robin, so every rank sees its units in global order, and interleaving
the ranks unit by unit gives back the global order, whatever the number of workers or ranks.
Every position is assigned once: each sample is seen exactly once per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORDER_TAG = 0x6F72646572  # "order"


@dataclass
class Members:
    """Which rows of each shard belong to a dataset view."""

    shards: np.ndarray  # shard numbers with at least one member, ascending
    rows: list[np.ndarray]  # for each of them, the member rows (sorted local indices)

    @property
    def total(self) -> int:
        return int(sum(len(r) for r in self.rows))


def members(starts: np.ndarray, stops: np.ndarray, indices: np.ndarray | None) -> Members:
    """Members of a view given by sorted global ``indices`` (None: every sample)."""
    if indices is None:
        return Members(
            np.arange(len(starts)),
            [np.arange(b - a, dtype=np.int64) for a, b in zip(starts, stops)],
        )
    lo = np.searchsorted(indices, starts, side="left")
    hi = np.searchsorted(indices, stops, side="left")
    keep = np.nonzero(hi > lo)[0]
    return Members(keep, [indices[lo[k] : hi[k]] - starts[k] for k in keep])


@dataclass
class EpochOrder:
    """Global order: ``shard[p]``, ``row[p]`` of every position ``p``; block boundaries."""

    shard: np.ndarray
    row: np.ndarray
    bounds: np.ndarray  # positions where blocks start, plus the total at the end

    def __len__(self) -> int:
        return len(self.shard)


def epoch_order(m: Members, seed: int, epoch: int, shuffle: bool, buffer: int) -> EpochOrder:
    """The global order of one epoch (see the module docstring)."""
    if not shuffle:
        shard = np.concatenate([np.full(len(r), k) for k, r in zip(m.shards, m.rows)] or [[]])
        row = np.concatenate(m.rows or [np.zeros(0, np.int64)])
        sizes = np.array([len(r) for r in m.rows], dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return EpochOrder(shard.astype(np.int64), row.astype(np.int64), bounds)
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(epoch, ORDER_TAG)))
    )
    perm = rng.permutation(len(m.shards))
    shards, rows, bounds = [], [], [0]
    for b in range(0, len(perm), max(1, buffer)):
        chosen = perm[b : b + max(1, buffer)]
        s = np.concatenate([np.full(len(m.rows[j]), m.shards[j]) for j in chosen])
        r = np.concatenate([m.rows[j] for j in chosen])
        mix = rng.permutation(len(s))
        shards.append(s[mix])
        rows.append(r[mix])
        bounds.append(bounds[-1] + len(s))
    if not shards:
        return EpochOrder(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(1, np.int64))
    return EpochOrder(
        np.concatenate(shards).astype(np.int64),
        np.concatenate(rows).astype(np.int64),
        np.asarray(bounds, dtype=np.int64),
    )


@dataclass(frozen=True)
class Part:
    """One consumer's share: rank ``rank`` of ``world``, worker ``worker`` of ``workers``."""

    unit: int = 1
    rank: int = 0
    world: int = 1
    worker: int = 0
    workers: int = 1
    start: int = 0  # first global position of the epoch not yet consumed (resume)

    def mine(self, positions: np.ndarray) -> np.ndarray:
        """Boolean mask of the given positions that this consumer takes."""
        u = (positions - self.start) // self.unit
        ok = positions >= self.start
        return (
            ok & (u % self.world == self.rank) & ((u // self.world) % self.workers == self.worker)
        )

    def units(self, positions: np.ndarray) -> np.ndarray:
        return (positions - self.start) // self.unit


def rank_count(total: int, unit: int, rank: int, world: int, start: int = 0) -> int:
    """How many positions of ``[start, total)`` rank ``rank`` receives."""
    remaining = max(0, total - start)
    n_units = -(-remaining // unit)
    mine = len(range(rank, n_units, world))
    if mine and (n_units - 1) % world == rank and remaining % unit:
        return (mine - 1) * unit + remaining % unit
    return mine * unit


def resume_position(total: int, unit: int, world: int, start: int, consumed: int) -> int:
    """Global position after every rank consumed ``consumed`` samples in lockstep."""
    position = start + (consumed // unit) * unit * world
    if consumed % unit == 0:
        return min(total, position)
    # Only the globally last unit can be short: a rank that took part of a unit finished.
    if position + unit * world < total:
        raise ValueError(
            f"consumed={consumed} is not a multiple of the unit (batch size) {unit}: the samples "
            "of a partly consumed batch cannot be told apart; save state between batches"
        )
    return total
