"""``ds.torch(...)``: an ``IterableDataset`` with exactly-once, worker- and rank-invariant order.

Use it with ``DataLoader(tds, batch_size=B, num_workers=k)`` and give the same ``batch_size=B``
to ``ds.torch`` (it is the unit dealt to ranks and workers, see :mod:`physflow.ml.order`), or
``tds.loader(num_workers=k)``, which does that and tracks progress for ``state_dict()``.
With ``batched=True`` the dataset yields whole batches (use ``DataLoader(batch_size=None)``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from . import order, reader

STATE_VERSION = 1


def _dist(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None and world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1
    rank, world_size = rank or 0, world_size or 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    return rank, world_size


def _tensor(value: Any) -> Any:
    """A torch tensor of the stored dtype (strings stay Python strings)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "USO":
            return value.tolist()
        return torch.from_numpy(value)
    if isinstance(value, np.str_ | str):
        return str(value)
    if isinstance(value, np.generic):
        return torch.from_numpy(np.asarray(value))
    return value


def _rows(column: Any) -> Any:
    """A block's column as a sequence of per-sample values (tensors share the block's memory)."""
    if isinstance(column, list):
        return [_tensor(np.asarray(v)) for v in column]
    if column.dtype.kind in "USO":
        return column.tolist()
    return torch.from_numpy(column).unbind(0)


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """``default_collate`` per key, keeping a list where samples differ in shape (ragged)."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        ragged = isinstance(values[0], torch.Tensor) and len({v.shape for v in values}) > 1
        if ragged or isinstance(values[0], str):
            out[key] = values
        else:
            out[key] = default_collate(values)
    return out


def _shared(index: int, doc: str, kind: type = int) -> property:
    def get(self: Any) -> Any:
        return kind(self._order[index])

    def put(self: Any, value: Any) -> None:
        self._order[index] = int(value)

    return property(get, put, doc=doc)


class TorchDataset(IterableDataset):
    """Samples (or batches) of a :class:`~physflow.ml.dataset.Dataset` view for torch.

    ``shuffle``/``seed``/``epoch``/``buffer`` fix the global order (``buffer`` shards are read
    and mixed together); ``rank``/``world_size`` default to torch.distributed when initialised;
    ``batch_size`` is the unit dealt to ranks and DataLoader workers; ``prefetch`` blocks are
    read ahead by ``threads`` threads; ``drop_last`` drops the final short unit.
    """

    def __init__(
        self,
        ds: Any,
        shuffle: bool = True,
        seed: int = 0,
        *,
        epoch: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        batch_size: int = 1,
        batched: bool = False,
        drop_last: bool = False,
        buffer: int = 8,
        prefetch: int = 1,
        threads: int = 2,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= seed < 1 << 63:
            raise ValueError(f"seed must be in [0, 2**63), got {seed}")
        self.ds = ds
        # seed, epoch, start position, shuffle, buffer: in shared memory, so that set_epoch and
        # load_state_dict reach persistent DataLoader workers too
        self._order = multiprocessing.RawArray("q", [seed, epoch, 0, int(shuffle), buffer])
        self.rank, self.world_size = _dist(rank, world_size)
        self.batch_size, self.batched, self.drop_last = batch_size, batched, drop_last
        self.prefetch, self.threads = prefetch, threads
        self._yielded = 0  # samples yielded by this object (iteration in this process)

    seed = _shared(0, "the order's seed")
    epoch = _shared(1, "the epoch (set it with set_epoch)")
    start = _shared(2, "the global position this epoch resumes from")
    shuffle = _shared(3, "whether the order is shuffled", bool)
    buffer = _shared(4, "shards read and mixed together when shuffling")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if multiprocessing.context.get_spawning_popen() is None:  # not starting a worker
            state["_order"] = list(self._order)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self._order, list):
            self._order = multiprocessing.RawArray("q", self._order)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (call on every rank before iterating, like DistributedSampler)."""
        self.epoch, self.start, self._yielded = epoch, 0, 0

    def _end(self) -> int:
        total = len(self.ds)
        short = (total - self.start) % self.batch_size if self.drop_last else 0
        return total - short

    def __len__(self) -> int:
        n = order.rank_count(self._end(), self.batch_size, self.rank, self.world_size, self.start)
        return -(-n // self.batch_size) if self.batched else n

    def _part(self) -> order.Part:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        return order.Part(
            self.batch_size, self.rank, self.world_size, worker, workers, start=self.start
        )

    def __iter__(self) -> Any:
        plan = order.epoch_order(
            self.ds.members(), self.seed, self.epoch, self.shuffle, self.buffer
        )
        part = self._part()
        stream = reader.BlockStream(self.ds, plan, part, self.prefetch, self.threads)
        end = self._end()
        if self.batched:
            for batch in reader.batches(stream, part):
                if self.drop_last and len(batch["index"]) < self.batch_size:
                    continue
                self._yielded += len(batch["index"])
                yield {
                    k: _tensor(np.asarray(v))
                    if not isinstance(v, list)
                    else [_tensor(x) for x in v]
                    for k, v in batch.items()
                }
            return
        for positions, columns in stream:
            keys = list(columns)
            rows = [_rows(v) for v in columns.values()]
            for position, values in zip(positions, zip(*rows)):
                if position >= end:
                    return
                self._yielded += 1
                yield dict(zip(keys, values))

    # -- mid-epoch resume -------------------------------------------------------------------

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where this epoch stands after this rank consumed ``consumed`` samples (default: what
        this object yielded itself, i.e. ``num_workers=0``; :meth:`loader` tracks it for you)."""
        if consumed is None:
            consumed = self._yielded
        position = order.resume_position(
            len(self.ds), self.batch_size, self.world_size, self.start, consumed
        )
        card = self.ds.card
        return {
            "version": STATE_VERSION,
            "identity": card.identity,
            "split": self.ds.split_name,
            "samples": len(self.ds),
            "seed": self.seed,
            "epoch": self.epoch,
            "shuffle": self.shuffle,
            "buffer": self.buffer,
            "position": position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue an epoch: the next iteration yields exactly the samples not yet consumed.
        The order (seed, epoch, shuffle, buffer) comes from the state; ranks, workers and batch
        size may differ from the saved run."""
        mine = self.state_dict(consumed=0)
        for key in ("version", "identity", "split", "samples"):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"state_dict does not match this dataset: {key} is {state.get(key)!r} there, "
                    f"{mine[key]!r} here"
                )
        self.seed, self.epoch = state["seed"], state["epoch"]
        self.shuffle, self.buffer = state["shuffle"], state["buffer"]
        self.start, self._yielded = int(state["position"]), 0

    def loader(self, **options: Any) -> TrackedLoader:
        """A DataLoader over this dataset with the right batch size and collate function, which
        counts consumed samples so ``loader.state_dict()`` works with any ``num_workers``."""
        if self.batched:
            options.setdefault("batch_size", None)
        else:
            options.setdefault("batch_size", self.batch_size)
            options.setdefault("collate_fn", collate)
        return TrackedLoader(self, **options)


class TrackedLoader(DataLoader):
    """A DataLoader that counts the samples it delivered this epoch (for ``state_dict``)."""

    def __init__(self, dataset: TorchDataset, **options: Any) -> None:
        super().__init__(dataset, **options)
        self.consumed = 0

    def __iter__(self) -> Any:
        self.consumed = 0
        for batch in super().__iter__():
            self.consumed += len(batch["index"])
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict(consumed=self.consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)
