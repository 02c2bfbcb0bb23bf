"""configs/astro_cutouts_dataset.yaml: a cutout training set over a survey archive read through
injected faults; the second epoch comes from the store, every sample is intact."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.stages.astro import prepare_cutouts, publish_survey
from physflow.stages.astro.remote import faulty_filesystem_class

torch = pytest.importorskip("torch")
fsspec = pytest.importorskip("fsspec")
fits = pytest.importorskip("astropy.io.fits")
pytest.importorskip("physflow.ml.torch_data", reason="physflow.ml torch loader not available")

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "configs" / "astro_cutouts_dataset.yaml"
SIZE = 32


@pytest.fixture(scope="module")
def survey_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("survey")
    publish_survey(str(root), 16)
    return root


@pytest.fixture(autouse=True)
def no_faults():
    yield
    fsspec.config.conf.pop("faulty", None)


def reference_stamp(root: Path, image: int, star: int) -> tuple[np.ndarray, float]:
    """The stamp cut straight from the published file with astropy (no physflow code)."""
    index = json.loads((root / "index.json").read_bytes())
    entry = index["images"][image]
    with fits.open(io.BytesIO((root / entry["name"]).read_bytes())) as hdul:
        counts = np.asarray(hdul[0].data, dtype=np.float64)  # uint16 convention: exact
    x, y = entry["stars"]["x"][star], entry["stars"]["y"][star]
    x0, y0 = int(np.floor(x + 0.5)) - SIZE // 2, int(np.floor(y + 0.5)) - SIZE // 2
    stamp = np.zeros((SIZE, SIZE))
    ay, ax = max(y0, 0), max(x0, 0)
    part = counts[ay : y0 + SIZE, ax : x0 + SIZE]
    stamp[ay - y0 : ay - y0 + part.shape[0], ax - x0 : ax - x0 + part.shape[1]] = part
    return stamp.astype(np.float32), float(np.float32(entry["stars"]["flux"][star]))


def check_epoch(loader, root: Path) -> tuple[int, int]:
    """(samples seen, samples that differ from the reference)."""
    seen = bad = 0
    for batch in loader:
        for k in range(len(batch["index"])):
            image, star = int(batch["sample.image"][k]), int(batch["sample.star"][k])
            stamp, flux = reference_stamp(root, image, star)
            seen += 1
            same = np.array_equal(batch["x"][k].numpy(), stamp)
            bad += not (same and float(batch["flux"][k]) == flux)
    return seen, bad


def damage_one_shard(ds, k: int) -> None:
    """Flip one byte of shard k's cutout array on disk (what a bad disk or torn copy does)."""
    obj = Path(ds.store.object_path(ds.card.shards[k].arrays["x"]))
    chunk = next(p for p in sorted(obj.rglob("*")) if p.is_file() and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x10
    os.chmod(chunk, 0o644)
    chunk.write_bytes(bytes(data))


def test_epoch_two_is_served_from_the_store_under_faults(tmp_path, survey_dir):
    cls = faulty_filesystem_class()
    index = survey_dir / "index.json"
    overrides = {
        "survey.index": f"faulty::file://{index}",
        "survey.digest": pf.digest(index.read_bytes()),  # pinned, like a lockfile
    }
    fsspec.config.conf["faulty"] = {
        "p_disconnect": 0.2, "p_truncate": 0.15, "p_corrupt": 0.15, "seed": 7,
    }  # fmt: skip
    faults_before = sum(cls.total_faults.values())
    store = pf.Store(tmp_path / "store")
    args = {"store": store, "overrides": overrides, "samples": 256, "shard_size": 16}

    ds, first = prepare_cutouts(SPEC, **args)
    assert (first.samples, first.computed, first.store_hits) == (256, 256, 0)
    assert sum(cls.total_faults.values()) > faults_before  # faults were injected and survived
    used_images = {int(ds[i]["sample.image"]) for i in range(len(ds))}
    # each image was fetched intact once (plus retries); the other samples used the store copy
    assert len(used_images) + 1 <= first.remote_reads < 256
    train = ds.split("train")
    loader = torch.utils.data.DataLoader(train.torch(shuffle=True, seed=0, batch_size=32),
                                         batch_size=32)  # fmt: skip
    seen, bad = check_epoch(loader, survey_dir)
    assert seen == len(train) and bad == 0

    # between the epochs one shard gets damaged on disk; the faults stay on
    damage_one_shard(ds, 5)
    ds2, second = prepare_cutouts(SPEC, **args)
    assert second.repaired_shards == 1 and second.computed == 16
    assert second.hit_rate >= 0.9 and second.store_hits == 240
    assert second.remote_reads == 0  # the survey is not read again: images come from the store
    seen, bad = check_epoch(
        torch.utils.data.DataLoader(ds2.torch(shuffle=True, seed=1, batch_size=32), batch_size=32),
        survey_dir,
    )
    assert (seen, bad) == (256, 0)

    _, third = prepare_cutouts(SPEC, **args)
    assert third.hit_rate == 1.0 and third.remote_reads == 0 and third.repaired_shards == 0


def test_a_moved_survey_behind_a_variable_is_still_all_hits(tmp_path, survey_dir, monkeypatch):
    """The survey's location comes from the environment: moving the archive changes no key, so
    every shard is reused and nothing is read from the archive."""
    here = tmp_path / "here"
    shutil.copytree(survey_dir, here)
    monkeypatch.setenv("ASTRO_SURVEY", str(here))
    args = {"store": pf.Store(tmp_path / "store"), "samples": 32, "shard_size": 8,
            "overrides": {"survey.index": "${ASTRO_SURVEY}/index.json"}}  # fmt: skip
    _, first = prepare_cutouts(SPEC, **args)
    assert first.computed == 32 and first.remote_reads > 0
    there = tmp_path / "there"
    shutil.move(here, there)
    monkeypatch.setenv("ASTRO_SURVEY", str(there))
    _, again = prepare_cutouts(SPEC, **args)
    assert again.store_hits == 32 and again.computed == 0
    assert again.remote_reads == 2  # only the two reads that pin the index when loading


def test_a_survey_image_altered_for_good_is_never_used(tmp_path, survey_dir):
    """The archive's file differs from its pinned digest: every sample of it fails after the
    bounded retries, generation stops, and nothing of it is in the store."""
    root = tmp_path / "copy"
    root.mkdir()
    for f in survey_dir.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
    damaged = bytearray((root / "field_0003.fits").read_bytes())
    damaged[5000] ^= 0x01
    (root / "field_0003.fits").write_bytes(bytes(damaged))
    overrides = {"survey.index": str(root / "index.json"), "sample.image": 3}
    with pytest.raises(Exception, match=r"field_0003\.fits.*no intact read in 9 attempt"):
        pf.ml.generate(
            SPEC,
            store=pf.Store(tmp_path / "store"),
            overrides=overrides,
            vary={"sample.star": {"randint": [0, 8]}},
            samples=4,
            shard_size=4,
        )


def test_missing_survey_is_a_spec_error_with_the_fix(tmp_path):
    with pytest.raises(pf.SpecError, match=r"python -m physflow\.stages\.astro survey"):
        pf.load_spec(SPEC, overrides={"survey.index": str(tmp_path / "none" / "index.json")})
