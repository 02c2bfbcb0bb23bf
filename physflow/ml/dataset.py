"""``Dataset``: a generated dataset (or a split of it), read from the store through its card."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import _engine, encoding, order, reader, sampling
from . import card as card_mod
from .distributions import Distribution, parse


class Dataset:
    """Samples of a dataset card: ``len(ds)``, ``ds[i]``, ``ds.split(name)``, ``ds.card``,
    ``ds.to_xarray()``, ``ds.iter_batches(...)``, ``ds.torch(...)``.

    ``ds[i]`` is a dict: each output field (numpy array), each varied parameter by its path
    (``"channel.ebn0_db"``) and ``"index"``, the sample's id in the whole dataset.
    """

    def __init__(
        self,
        card: card_mod.DatasetCard,
        store: Any,
        indices: np.ndarray | None = None,
        split_name: str | None = None,
    ) -> None:
        self.card = card
        self.store = store
        self.indices = indices  # sorted global ids of a view; None = every sample
        self.split_name = split_name
        self.vary: dict[str, Distribution] = {
            path: parse(*next(iter(info.distribution.items())))
            for path, info in card.params.items()
        }
        self.shard_starts = np.array([s.start for s in card.shards], dtype=np.int64)
        self.shard_stops = np.array([s.stop for s in card.shards], dtype=np.int64)
        self._cache: OrderedDict[int, encoding.ShardData] = OrderedDict()
        self._members: order.Members | None = None

    # -- pickling (DataLoader workers, dask) ---------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()  # decoded shards and members are rebuilt on demand
        state["_members"] = None
        return state

    # -- basics ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.card.samples if self.indices is None else len(self.indices)

    def __repr__(self) -> str:
        part = f" split {self.split_name!r}" if self.split_name else ""
        fields = ", ".join(f"{k}: {v.dtype}{v.shape}" for k, v in self.card.fields.items())
        return f"<Dataset {self.card.name!r}{part}: {len(self)} samples; {fields}>"

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def fields(self) -> dict[str, card_mod.FieldInfo]:
        return dict(self.card.fields)

    def global_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for a dataset of {n} samples")
        i %= n
        return int(i if self.indices is None else self.indices[i])

    def shard_of(self, gid: int) -> int:
        return int(np.searchsorted(self.shard_starts, gid, side="right") - 1)

    def shard(self, k: int) -> encoding.ShardData:
        """Shard ``k`` decoded (verified on read; the last few are kept in memory)."""
        data = self._cache.get(k)
        if data is None:
            data = reader.read_shard(self, k)
            self._cache[k] = data
            while len(self._cache) > 4:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(k)
        return data

    def __getitem__(self, i: int) -> dict[str, Any]:
        gid = self.global_index(i)
        k = self.shard_of(gid)
        sample = self.shard(k).sample(gid - int(self.shard_starts[k]))
        out = {key: np.array(v) if isinstance(v, np.ndarray) else v for key, v in sample.items()}
        out["index"] = gid
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    # -- splits --------------------------------------------------------------------------------

    @property
    def splits(self) -> dict[str, int]:
        """Samples per split in this view."""
        if not self.card.split:
            return {}
        ids = self._ids()
        assigned = sampling.assign_splits(self.card.seed, self.card.split, ids)
        names = sampling.split_names(self.card.split)
        return {name: int(np.sum(assigned == j)) for j, name in enumerate(names)}

    def _ids(self) -> np.ndarray:
        return np.arange(self.card.samples) if self.indices is None else self.indices

    def split(self, name: str) -> Dataset:
        """The samples of split ``name`` (assigned by a hash of the sample id, see docs)."""
        if not self.card.split:
            raise KeyError(
                f"dataset '{self.card.name}' has no splits; give split: {{train: 0.8, ...}} "
                "when generating it"
            )
        names = sampling.split_names(self.card.split)
        if name not in names:
            raise KeyError(f"no split {name!r} in dataset '{self.card.name}'; splits: {names}")
        ids = self._ids()
        chosen = ids[
            sampling.assign_splits(self.card.seed, self.card.split, ids) == names.index(name)
        ]
        return Dataset(self.card, self.store, chosen, name)

    # -- reproduction ----------------------------------------------------------------------------

    def params(self, i: int) -> dict[str, Any]:
        """The varied parameters of sample ``i`` (recomputed from its seed, no read)."""
        gid = self.global_index(i)
        return sampling.draw(self.card.seed, gid, sampling.ordered(self.vary))[1]

    def run_seed(self, i: int) -> int:
        """The pipeline seed that reproduces sample ``i`` (see :meth:`sample_pipeline`)."""
        return sampling.draw(self.card.seed, self.global_index(i), [])[0]

    def sample_pipeline(self, i: int, pipeline: Any = None) -> Any:
        """``pipeline.with_values(params_i, seed=run_seed_i)``: running it reproduces sample
        ``i``. ``pipeline`` defaults to the card's spec file (when it was generated from one)."""
        if pipeline is None:
            if not self.card.spec_path or not os.path.exists(self.card.spec_path):
                raise ValueError(
                    f"dataset '{self.card.name}' was not generated from a spec file; pass the "
                    "pipeline: ds.sample_pipeline(i, pipeline)"
                )
            from .spec import load_dataset_spec

            pipeline, _ = load_dataset_spec(self.card.spec_path)
        return pipeline.with_values(self.params(i), seed=self.run_seed(i))

    # -- bulk access -----------------------------------------------------------------------------

    def members(self) -> order.Members:
        if self._members is None:
            self._members = order.members(self.shard_starts, self.shard_stops, self.indices)
        return self._members

    def iter_batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        buffer: int = 8,
        prefetch: int = 1,
        threads: int = 2,
    ) -> Iterator[dict[str, Any]]:
        """numpy batches (no torch needed): fields as arrays (lists for ragged fields), each
        parameter, and ``index``. Same order and partition rules as :meth:`torch`."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        plan = order.epoch_order(self.members(), seed, epoch, shuffle, buffer)
        part = order.Part(unit=batch_size, rank=rank, world=world_size)
        stream = reader.BlockStream(self, plan, part, prefetch, threads)
        yield from reader.batches(stream, part, drop_last)

    def torch(self, shuffle: bool = True, seed: int = 0, **options: Any) -> Any:
        """A ``torch.utils.data.IterableDataset`` over this view; see
        :class:`physflow.ml.torch_data.TorchDataset` for the options."""
        from .torch_data import TorchDataset

        return TorchDataset(self, shuffle=shuffle, seed=seed, **options)

    def to_xarray(self) -> Any:
        """A lazy ``xarray.Dataset`` with a ``sample`` dimension (dask, verified chunk reads)."""
        from .xarray_view import to_xarray

        return to_xarray(self)

    def verify(self) -> list[str]:
        """Problems found reading every shard of this dataset (empty when intact)."""
        problems = []
        for k, info in enumerate(self.card.shards):
            try:
                reader.read_shard(self, k)
            except Exception as exc:
                problems.append(f"shard {info.start}:{info.stop}: {type(exc).__name__}: {exc}")
        return problems


def open_dataset(name_or_card: str | os.PathLike[str], store: Any = None) -> Dataset:
    """A dataset by name (in ``store``) or by the path of its card (``.json``)."""
    text = str(name_or_card)
    if text.endswith(".json") or os.sep in text or isinstance(name_or_card, Path):
        path = Path(text)
        if not path.exists():
            raise card_mod.CardError(f"{path}: no such dataset card")
        the_card = card_mod.decode(path.read_bytes(), str(path))
        if store is None:
            store = path.resolve().parent.parent
            if not (Path(store) / "objects").is_dir():
                store = the_card.store
    else:
        the_card = None
    st = _engine.open_store(store)
    if the_card is None:
        the_card = card_mod.read(st, text)
    _engine.touch_records(st, [s.key for s in the_card.shards])
    return Dataset(the_card, st)


def list_datasets(store: Any = None) -> list[card_mod.DatasetCard]:
    st = _engine.open_store(store)
    return [card_mod.read(st, name) for name in card_mod.names(st)]
