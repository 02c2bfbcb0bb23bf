"""Generation, reading and reproduction of samples."""

from __future__ import annotations

import numpy as np

import physflow as pf

from .ml_stages import OUTPUTS, VARY, pipeline


def test_generate_reads_back_and_reproduces_every_sample(tmp_path):
    store = tmp_path / "store"
    p = pipeline()
    ds = pf.ml.generate(p, samples=23, vary=VARY, outputs=OUTPUTS, shard_size=8, store=store)
    assert len(ds) == 23
    assert [(s.start, s.stop) for s in ds.card.shards] == [(0, 8), (8, 16), (16, 23)]
    assert ds.card.fields["x"].shape == [16] and ds.card.fields["x"].dtype == "<f4"
    assert ds.card.generation.computed_samples == 23
    for i in (0, 7, 8, 22):
        sample = ds[i]
        # an ordinary run of the sample's pipeline (the runner, its rng streams) gives the same bits
        sample_pipeline = ds.sample_pipeline(i, p)
        res = sample_pipeline.run(store=tmp_path / "other")
        assert sample["x"].tobytes() == res["noisy"].tobytes()
        assert sample["y"] == res["energy"]
        assert sample["phase"] == res["signal.info"]["phase"]
        cfg = sample_pipeline.nodes["signal"].config
        assert cfg.kind == sample["signal.kind"]
        assert cfg.amplitude == sample["signal.amplitude"]
        assert sample["index"] == i


def test_second_generation_computes_nothing(tmp_path):
    kwargs = dict(samples=20, vary=VARY, outputs=OUTPUTS, shard_size=8, store=tmp_path / "s")
    first = pf.ml.generate(pipeline(), **kwargs)
    again = pf.ml.generate(pipeline(), **kwargs)
    assert again.card.generation.computed_samples == 0
    assert again.card.generation.reused_shards == 3
    assert [s.arrays for s in again.card.shards] == [s.arrays for s in first.card.shards]
    reopened = pf.ml.open_dataset("mltest", store=tmp_path / "s")
    assert np.array_equal(reopened[5]["x"], first[5]["x"])
