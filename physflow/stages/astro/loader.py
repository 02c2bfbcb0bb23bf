"""The cutout loader: a dataset spec (``configs/astro_cutouts_dataset.yaml``) made ready for
an epoch -- generated where needed, checked, repaired -- with the numbers that say where each
sample came from.

``prepare_cutouts`` calls ``pf.ml.generate`` (shards already in the store are reused, so a
second epoch computes nothing and never touches the remote survey), then, with ``repair``,
reads every shard once: a shard whose bytes no longer match their digests (a damaged disk, a
torn copy) is quarantined and generated again -- its samples are recomputed from the images
kept in the store, not fetched again. Then ``ds.torch(...)`` serves the epoch.
"""

from __future__ import annotations

from typing import Any

import msgspec

import physflow as pf

from . import remote


class EpochStats(msgspec.Struct):
    """Where an epoch's samples came from."""

    samples: int
    #: Samples served from shards already in the store.
    store_hits: int
    #: Samples computed (first epoch, new samples, or repaired shards).
    computed: int
    #: Shards found damaged, quarantined and generated again.
    repaired_shards: int
    #: Reads of remote files (attempts, including retries) while preparing.
    remote_reads: int

    @property
    def hit_rate(self) -> float:
        return self.store_hits / self.samples if self.samples else 0.0


def damaged_shards(ds: Any) -> list[tuple[int, str | None]]:
    """(shard index, digest of the damaged object) of every shard that fails verification."""
    bad = []
    for k in range(len(ds.card.shards)):
        try:
            ds.shard(k)
        except pf.CorruptObjectError as exc:
            bad.append((k, exc.digest))
    return bad


def prepare_cutouts(
    spec: Any,
    *,
    store: Any,
    overrides: dict[str, Any] | None = None,
    repair: bool = True,
    **generate: Any,
) -> tuple[Any, EpochStats]:
    """``(dataset, stats)`` for one epoch of a cutout dataset spec (or pipeline)."""
    import physflow.ml as ml

    reads_before = remote.total_reads()
    ds = ml.generate(spec, store=store, overrides=overrides, **generate)
    gen = ds.card.generation
    computed, hits, repaired = gen.computed_samples, gen.reused_samples, 0
    if repair:
        bad = damaged_shards(ds)
        for _k, digest in bad:
            if digest:
                ds.store.quarantine(digest)
        if bad:
            ds = ml.generate(spec, store=store, overrides=overrides, **generate)
            redone = ds.card.generation.computed_samples
            computed, hits, repaired = computed + redone, hits - redone, len(bad)
            if damaged_shards(ds):
                raise pf.CorruptObjectError(
                    f"dataset '{ds.card.name}': shards still damaged after repair"
                )
    stats = EpochStats(
        samples=len(ds),
        store_hits=hits,
        computed=computed,
        repaired_shards=repaired,
        remote_reads=remote.total_reads() - reads_before,
    )
    return ds, stats
