"""Reading shards (verified) and streaming a consumer's share of an epoch, block by block.

Each block's shards are read whole (one sequential, digest-checked read per array), the rows
this consumer takes are gathered in global order, and the block is released. ``prefetch``
blocks are read ahead by ``threads`` background threads while the current one is consumed.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

import physflow as pf

from . import _engine, encoding
from .order import EpochOrder, Part


def read_shard(ds: Any, k: int) -> encoding.ShardData:
    """Shard ``k`` of a dataset, every array verified against its digest."""
    info = ds.card.shards[k]
    arrays = {}
    for name, d in info.arrays.items():
        try:
            arrays[name] = _engine.load_array(ds.store, d)
        except pf.MissingObjectError:
            raise pf.MissingObjectError(
                f"dataset '{ds.card.name}', shard {info.start}:{info.stop}: array '{name}' "
                f"(object {d}) is no longer in the store at {ds.store.location} (removed by "
                "gc?). Generate the dataset again: only missing shards are recomputed."
            ) from None
    data = encoding.ShardData(arrays, list(ds.card.fields), ds.vary)
    if data.n != info.stop - info.start:
        raise pf.CorruptObjectError(
            f"dataset '{ds.card.name}', shard {info.start}:{info.stop} holds {data.n} samples"
        )
    return data


def gather(
    shards: dict[int, encoding.ShardData], shard: np.ndarray, row: np.ndarray, ds: Any
) -> dict[str, Any]:
    """Columns of the rows (``shard[j]``, ``row[j]``), in this order: arrays, or lists for
    fields whose samples differ in shape."""
    n = len(shard)
    keys = [int(k) for k in np.unique(shard)]
    masks = {k: shard == k for k in keys}
    taken = {k: shards[k].take(row[masks[k]]) for k in keys}
    out: dict[str, Any] = {}
    for name in [*ds.card.fields, *ds.vary]:
        parts = {k: taken[k][name] for k in keys}
        as_list = any(isinstance(p, list) for p in parts.values())
        if as_list or len({(p.dtype, p.shape[1:]) for p in parts.values()}) > 1:
            column: list[Any] = [None] * n
            for k, part in parts.items():
                for j, value in zip(np.nonzero(masks[k])[0], part):
                    column[j] = value
            out[name] = column
            continue
        first = parts[keys[0]]
        if len(keys) == 1:
            out[name] = first
            continue
        array = np.empty((n, *first.shape[1:]), dtype=first.dtype)
        for k, part in parts.items():
            array[masks[k]] = part
        out[name] = array
    out["index"] = ds.shard_starts[shard] + row
    return out


class BlockStream:
    """Yields ``(positions, columns)`` for each block holding rows of one consumer."""

    def __init__(
        self, ds: Any, order: EpochOrder, part: Part, prefetch: int = 1, threads: int = 2
    ) -> None:
        self.ds, self.order, self.part = ds, order, part
        self.prefetch, self.threads = max(0, prefetch), max(1, threads)

    def _blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        bounds = self.order.bounds
        for b in range(len(bounds) - 1):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            if hi <= self.part.start:
                continue
            positions = np.arange(lo, hi)
            chosen = positions[self.part.mine(positions)]
            if len(chosen):
                yield chosen, np.unique(self.order.shard[chosen])

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        if self.prefetch == 0:
            for chosen, needed in self._blocks():
                shards = {int(k): read_shard(self.ds, int(k)) for k in needed}
                yield chosen, self._gather(chosen, shards)
            return
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="physflow-ml-read")
        try:
            queue: deque[tuple[np.ndarray, dict[int, Future]]] = deque()
            blocks = self._blocks()
            for chosen, needed in blocks:
                queue.append((chosen, self._submit(pool, needed)))
                if len(queue) > self.prefetch:
                    yield self._ready(queue.popleft())
            while queue:
                yield self._ready(queue.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor, needed: np.ndarray) -> dict[int, Future]:
        return {int(k): pool.submit(read_shard, self.ds, int(k)) for k in needed}

    def _ready(self, item: tuple[np.ndarray, dict[int, Future]]) -> tuple[np.ndarray, dict]:
        chosen, futures = item
        shards = {k: f.result() for k, f in futures.items()}
        return chosen, self._gather(chosen, shards)

    def _gather(self, chosen: np.ndarray, shards: dict[int, Any]) -> dict[str, Any]:
        return gather(shards, self.order.shard[chosen], self.order.row[chosen], self.ds)


def batches(stream: BlockStream, part: Part, drop_last: bool = False) -> Iterator[dict[str, Any]]:
    """Batches of one unit each (contiguous positions of the global order), across blocks."""
    pending: list[tuple[np.ndarray, dict[str, Any]]] = []
    current = None
    for positions, columns in stream:
        units = part.units(positions)
        cuts = np.nonzero(np.diff(units))[0] + 1
        edges = [0, *cuts.tolist(), len(positions)]
        for a, b in itertools.pairwise(edges):
            unit = int(units[a])
            if current is not None and unit != current:
                yield _concat(pending)
                pending = []
            current = unit
            pending.append((positions[a:b], _slice(columns, a, b)))
    if pending:
        batch = _concat(pending)
        if not (drop_last and len(batch["index"]) < part.unit):
            yield batch


def _slice(columns: dict[str, Any], a: int, b: int) -> dict[str, Any]:
    return {k: v[a:b] for k, v in columns.items()}


def _concat(parts: list[tuple[np.ndarray, dict[str, Any]]]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0][1]
    out: dict[str, Any] = {}
    for key in parts[0][1]:
        values = [cols[key] for _, cols in parts]
        if isinstance(values[0], list) or len({np.shape(v)[1:] for v in values}) > 1:
            out[key] = [x for v in values for x in v]
        else:
            out[key] = np.concatenate(values)
    return out
