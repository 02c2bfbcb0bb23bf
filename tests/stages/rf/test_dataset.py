"""configs/rf_dataset.yaml through physflow.ml: images + ragged boxes + labels, samples that
reproduce, and the preprocessing contract carried by the dataset card."""

from __future__ import annotations

import numpy as np
import pytest

import physflow as pf
from physflow.stages.rf import LABELS, ContractError, check_contract, preprocessing_digest

from .conftest import DATASET

ml = pytest.importorskip("physflow.ml")
pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    store = pf.Store(tmp_path_factory.mktemp("rfds") / "store")
    ds = ml.generate(str(DATASET), samples=6, shard_size=4, store=store)
    return store, ds


def test_samples_are_images_with_ragged_boxes_and_labels(dataset):
    _, ds = dataset
    assert len(ds) == 6
    fields = ds.card.fields
    assert (fields["image"].dtype, fields["image"].shape) == ("|u1", [256, 256])
    assert fields["boxes"].ragged and fields["boxes"].shape == [None, 4]
    assert fields["labels"].ragged and fields["labels"].dtype == "<i2"
    counts = set()
    for i in range(len(ds)):
        s = ds[i]
        boxes, labels = s["boxes"], s["labels"]
        assert boxes.shape == (len(labels), 4) and boxes.dtype == np.float32
        assert np.all((boxes >= 0) & (boxes <= 1)) and np.all(boxes[:, 1] > boxes[:, 0])
        names = [LABELS[k] for k in labels]
        assert names.count("tone") == 2
        n_bursts = names.count("qpsk") + names.count("chirp")
        assert n_bursts == s["synth.bursts.per_frame"]  # bursts lie inside the frame
        counts.add(n_bursts)
        # the image is brighter inside burst boxes than in the noise around them
        img = s["image"].astype(np.float64)
        inside = np.zeros(img.shape, bool)
        for (t0, t1, f0, f1), name in zip(boxes, names):
            if name != "tone":
                rows = slice(int(np.ceil(t0 * 256)), int(t1 * 256))
                inside[rows, int(np.ceil(f0 * 256)) : int(f1 * 256)] = True
        if inside.any():
            assert img[inside].mean() > img[~inside].mean() + 20  # > ~6 dB on the 80 dB scale
    assert len(counts) > 1  # the burst count is drawn per sample


def test_a_sample_reproduces_from_its_parameters(dataset):
    store, ds = dataset
    p = ds.sample_pipeline(2)
    res = p.run(store=store).raise_on_failure()
    assert res.misses == []  # generation left every node's result in the cache
    np.testing.assert_array_equal(res["sample.image"], ds[2]["image"])
    np.testing.assert_array_equal(res["sample.boxes"], ds[2]["boxes"])


def test_card_carries_the_preprocessing_contract(dataset):
    store, ds = dataset
    digest = preprocessing_digest(DATASET)
    assert check_contract(ds, DATASET) == digest
    reopened = ml.open_dataset("rf_dataset", store=store)
    assert check_contract(reopened.card, str(DATASET)) == digest
    serving = pf.load_spec(DATASET, overrides={"normalize.range_db": 60.0})
    with pytest.raises(ContractError, match=r"normalize\.range_db: dataset 80\.0, serving 60\.0"):
        check_contract(ds, serving)
    with pytest.raises(ContractError, match=r"stft\.hop: dataset 2048, serving 1024"):
        check_contract(ds, pf.load_spec(DATASET, overrides={"stft.hop": 1024}))
    # execution-only settings are free to differ between training and serving
    assert check_contract(ds, pf.load_spec(DATASET, overrides={"stft.backend": "torch"})) == digest


def test_float16_images_and_datasets_that_vary_preprocessing(tmp_path):
    store = pf.Store(tmp_path / "store")
    ds = ml.generate(
        str(DATASET),
        samples=2,
        shard_size=2,
        store=store,
        name="f16",
        overrides={"normalize.image_dtype": "float16"},
    )
    image = ds[0]["image"]
    assert image.dtype == np.float16 and 0.5 < float(image.max()) <= 1.0  # area-averaged
    assert check_contract(
        ds, pf.load_spec(DATASET, overrides={"normalize.image_dtype": "float16"})
    ) != preprocessing_digest(DATASET)
    varied = ml.generate(
        str(DATASET),
        samples=2,
        shard_size=2,
        store=store,
        name="varied",
        vary={"normalize.range_db": {"uniform": [60.0, 80.0]}},
    )
    with pytest.raises(ContractError, match=r"varies normalize\.range_db per sample"):
        check_contract(varied, DATASET)
