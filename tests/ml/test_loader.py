"""torch loading: exactly once per epoch across DataLoader workers and ranks, one global order
whatever their number, a new order per epoch, mid-epoch resume, dtypes; numpy batches."""

from __future__ import annotations

import numpy as np
import pytest

import physflow as pf

from .ml_stages import OUTPUTS, VARY, pipeline

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

N, SHARD, BATCH = 45, 8, 4


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    store = tmp_path_factory.mktemp("loader") / "store"
    return pf.ml.generate(
        pipeline(), samples=N, shard_size=SHARD, vary=VARY, outputs=OUTPUTS, store=store,
        split={"train": 0.7, "test": 0.3}, progress=False,
    )  # fmt: skip


def global_order(view, workers, world, seed=5, epoch=0, batched=False):
    """Each rank's DataLoader output, interleaved unit by unit (what the ranks see per step)."""
    per_rank = []
    for rank in range(world):
        tds = view.torch(
            shuffle=True, seed=seed, epoch=epoch, rank=rank, world_size=world,
            batch_size=BATCH, buffer=2, batched=batched,
        )  # fmt: skip
        loader = DataLoader(tds, batch_size=None if batched else BATCH, num_workers=workers)
        per_rank.append([b["index"].tolist() for b in loader])
    order = []
    for step in range(max(len(r) for r in per_rank)):
        for rank_batches in per_rank:
            if step < len(rank_batches):
                order += rank_batches[step]
    return order, per_rank


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("workers", [0, 1, 2])
def test_exactly_once_and_same_order_for_any_workers_and_ranks(ds, workers, world):
    reference, _ = global_order(ds, 0, 1)
    assert sorted(reference) == list(range(N))
    order, per_rank = global_order(ds, workers, world)
    assert order == reference
    seen = [i for batches in per_rank for b in batches for i in b]
    assert sorted(seen) == list(range(N))  # every sample exactly once across ranks and workers
    assert [len(b) for b in per_rank[0][:-1]] == [BATCH] * (len(per_rank[0]) - 1)


def test_split_view_and_batched_mode(ds):
    train = ds.split("train")
    reference, _ = global_order(train, 0, 1)
    assert sorted(reference) == sorted(int(i) for i in train.indices)
    for workers, world in ((2, 1), (1, 2)):
        assert global_order(train, workers, world)[0] == reference
        assert global_order(train, workers, world, batched=True)[0] == reference


def test_epochs_and_seeds_change_the_order(ds):
    a, _ = global_order(ds, 0, 1, epoch=0)
    b, _ = global_order(ds, 0, 1, epoch=1)
    c, _ = global_order(ds, 0, 1, seed=6)
    assert a != b and a != c and sorted(a) == sorted(b) == sorted(c)
    assert global_order(ds, 2, 1, epoch=1)[0] == b
    plain = [b["index"].tolist() for b in DataLoader(ds.torch(shuffle=False), batch_size=BATCH)]
    assert [i for batch in plain for i in batch] == list(range(N))


def test_shuffle_reads_whole_shards_in_blocks(ds):
    """With buffer=2 the global order is a sequence of blocks, each holding all samples of at
    most 2 shards (mixed together), so a reader needs only 2 shards at a time."""
    order, _ = global_order(ds, 0, 1)
    shard_of = [i // SHARD for i in order]
    blocks, current, needed = [], set(), 0
    for position, shard in enumerate(shard_of):
        if shard not in current:
            current.add(shard)
            needed += min(SHARD, N - shard * SHARD)
        if position + 1 == sum(len(b[1]) for b in blocks) + needed:  # block complete
            blocks.append((current, order[position + 1 - needed : position + 1]))
            current, needed = set(), 0
    assert sum(len(b) for _, b in blocks) == N
    assert all(len(shards) <= 2 for shards, _ in blocks)
    assert sum(len(shards) == 2 for shards, _ in blocks) >= 2
    mixed = [b for shards, b in blocks if len(shards) == 2 and b != sorted(b)]
    assert mixed  # samples of a block are shuffled, not read shard after shard


def test_samples_are_tensors_with_stored_dtypes(ds):
    sample = next(iter(ds.torch(shuffle=False)))
    assert sample["x"].dtype == torch.float32 and sample["x"].shape == (16,)
    assert sample["y"].dtype == torch.float64
    assert sample["signal.kind"] in ("sine", "square")
    assert torch.equal(sample["x"], torch.from_numpy(ds[0]["x"]))
    batch = next(iter(ds.torch(shuffle=False).loader(batch_size=5)))
    assert batch["x"].shape == (5, 16) and batch["signal.kind"][0] == sample["signal.kind"]


@pytest.mark.parametrize(("workers", "world", "resume_world"), [(0, 1, 1), (2, 1, 1), (1, 2, 1)])
def test_state_dict_resume_yields_exactly_the_rest(ds, workers, world, resume_world):
    reference, _ = global_order(ds, 0, 1)
    seen: list[int] = []
    states = []
    for rank in range(world):
        tds = ds.torch(
            shuffle=True, seed=5, rank=rank, world_size=world, batch_size=BATCH, buffer=2
        )
        loader = tds.loader(num_workers=workers)
        for step, batch in enumerate(loader):
            seen += batch["index"].tolist()
            if step == 2:  # stop mid-epoch after 3 batches per rank
                break
        states.append(loader.state_dict())
    assert all(s == states[0] for s in states)
    assert states[0]["position"] == 3 * BATCH * world
    rest = []
    for rank in range(resume_world):
        tds = ds.torch(shuffle=True, seed=0, rank=rank, world_size=resume_world, batch_size=BATCH)
        tds.load_state_dict(states[0])  # seed, epoch and position come from the state
        rest.append([b["index"].tolist() for b in tds.loader(num_workers=workers)])
    rest_order = [i for step in zip(*rest) for b in step for i in b]
    assert sorted(seen + rest_order) == list(range(N))
    assert seen == reference[: len(seen)] or world > 1
    assert rest_order == reference[len(seen) :]


def test_state_dict_mismatch_is_refused(ds):
    state = ds.torch(shuffle=True, batch_size=BATCH).state_dict(consumed=0)
    other = ds.split("train").torch(shuffle=True, batch_size=BATCH)
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="multiple of the unit"):
        ds.torch(shuffle=True, batch_size=BATCH).state_dict(consumed=3)


def test_numpy_batches_match_torch_order(ds):
    reference, _ = global_order(ds, 0, 1)
    batches = list(ds.iter_batches(BATCH, shuffle=True, seed=5, buffer=2))
    assert [i for b in batches for i in b["index"].tolist()] == reference
    ranks = [list(ds.iter_batches(BATCH, shuffle=True, seed=5, buffer=2, rank=r, world_size=2))
             for r in range(2)]  # fmt: skip
    merged = [int(i) for step in zip(*ranks) for b in step for i in b["index"]]
    assert merged == reference[: len(merged)]
    first = batches[0]
    assert isinstance(first["x"], np.ndarray) and first["x"].shape == (BATCH, 16)
    for j, i in enumerate(first["index"]):
        assert first["x"][j].tobytes() == ds[int(i)]["x"].tobytes()
        assert first["signal.kind"][j] == ds[int(i)]["signal.kind"]
    assert len(list(ds.iter_batches(BATCH, drop_last=True))) == N // BATCH


@pytest.mark.parametrize("context", [None, pytest.param("forkserver", marks=pytest.mark.slow)])
def test_persistent_workers_follow_set_epoch_and_resume(ds, context):
    """Workers that outlive an epoch see set_epoch / load_state_dict (shared order state)."""
    references = [global_order(ds, 0, 1, epoch=e)[0] for e in (0, 1)]
    tds = ds.torch(shuffle=True, seed=5, batch_size=BATCH, buffer=2)
    loader = tds.loader(num_workers=2, persistent_workers=True, multiprocessing_context=context)
    for epoch, reference in enumerate(references):
        tds.set_epoch(epoch)
        assert [i for b in loader for i in b["index"].tolist()] == reference
    tds.load_state_dict({**tds.state_dict(consumed=0), "epoch": 1, "position": 2 * BATCH})
    assert [i for b in loader for i in b["index"].tolist()] == references[1][2 * BATCH :]
