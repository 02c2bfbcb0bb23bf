"""FITS files as inputs: keys by content (not path or mtime), remote reads with injected
faults, bounded retries, and damaged bytes detected by digest and never used."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import physflow as pf
from physflow.stages.astro import (
    CutoutsConfig,
    PhotometryConfig,
    ReadFitsConfig,
    cutouts,
    file_digest,
    from_fits_bytes,
    make_image,
    photometry,
    read_fits,
    to_fits_bytes,
)
from physflow.stages.astro.remote import FetchError, faulty_filesystem_class, fetch_verified

fsspec = pytest.importorskip("fsspec")


def field_bytes(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(100.0, size=(96, 96)).astype(np.float64)
    counts[40:47, 40:47] += 500.0
    return to_fits_bytes(
        make_image(
            (counts - 32768).astype(np.int16), [("BUNIT", "count", "")], bscale=1.0, bzero=32768.0
        )
    )


def file_pipeline(url: str, **read) -> pf.Pipeline:
    p = pf.Pipeline("fits_input", seed=0)
    p.add("image", read_fits, ReadFitsConfig(url=url, **read))
    p.add(
        "cutouts",
        cutouts,
        CutoutsConfig(size=41, frame="pixel", positions=[[43.0, 43.0]]),
        image="image",
    )
    p.add(
        "phot",
        photometry,
        PhotometryConfig(radius=6, annulus_inner=10, annulus_outer=15),
        cutouts="cutouts",
    )
    return p


def keys(res) -> dict[str, str]:
    return {n.id: n.key for n in res.manifest.nodes}


def test_touch_and_move_keep_keys_one_changed_byte_changes_them(tmp_path, store):
    path = tmp_path / "a" / "field.fits"
    path.parent.mkdir()
    blob = field_bytes()
    path.write_bytes(blob)
    first = file_pipeline(str(path)).run(store=store).raise_on_failure()
    assert sorted(first.misses) == ["cutouts", "image", "phot"]
    # touching the file (new mtime, same bytes): every key and value is unchanged
    os.utime(path, (1e9, 1e9))
    touched = file_pipeline(str(path)).run(store=store).raise_on_failure()
    assert touched.misses == [] and keys(touched) == keys(first)
    # moving it: the reading node runs again (its config names the place), and yields the
    # same value, so everything downstream keeps its key and is a hit
    moved = tmp_path / "b" / "renamed.fits"
    moved.parent.mkdir()
    shutil.move(path, moved)
    after_move = file_pipeline(str(moved)).run(store=store).raise_on_failure()
    assert after_move.misses == ["image"] and sorted(after_move.hits) == ["cutouts", "phot"]
    assert after_move.digest("image") == first.digest("image")
    assert {k: v for k, v in keys(after_move).items() if k != "image"} == {
        k: v for k, v in keys(first).items() if k != "image"
    }
    # one changed byte in the data (same size, same mtime): new keys all the way down
    data = bytearray(blob)
    data[2880 + (43 * 96 + 43) * 2 + 1] ^= 0x01  # low byte of pixel (43, 43), big-endian
    moved.write_bytes(bytes(data))
    os.utime(moved, (1e9, 1e9))
    changed = file_pipeline(str(moved)).run(store=store).raise_on_failure()
    assert sorted(changed.misses) == ["cutouts", "image", "phot"]
    assert all(keys(changed)[n] != keys(first)[n] for n in ("image", "cutouts", "phot"))


def test_file_changed_after_pinning_is_never_used(tmp_path, store):
    path = tmp_path / "field.fits"
    path.write_bytes(field_bytes(1))
    pipeline = file_pipeline(str(path))  # pins the content digest now
    path.write_bytes(field_bytes(2))  # then the file changes under it
    res = pipeline.run(store=store)
    assert res.failed == ["image"] and "pinned" in res.errors["image"]
    assert "cutouts" in res.skipped
    path.write_bytes(field_bytes(1))
    again = pipeline.run(store=store).raise_on_failure()
    assert "image" in again.misses  # the failure was not cached


def test_missing_local_file_and_unpinned_remote_url_are_config_errors(tmp_path):
    with pytest.raises(ValueError, match=r"ReadFitsConfig\.url.*nope\.fits"):
        ReadFitsConfig(url=str(tmp_path / "nope.fits"))
    with pytest.raises(ValueError, match=r"digest is required.*memory://x\.fits"):
        ReadFitsConfig(url="memory://x.fits")
    with pytest.raises(ValueError, match="not a physflow content digest"):
        ReadFitsConfig(url="memory://x.fits", digest="sha256:abc")


@pytest.fixture
def remote_file(tmp_path):
    """A FITS file in fsspec's memory filesystem, with its pinned digest."""
    blob = field_bytes(3)
    path = f"/astro-tests/{tmp_path.name}/field.fits"
    fsspec.filesystem("memory").pipe_file(path, blob)
    yield path, blob, pf.digest(blob)
    fsspec.filesystem("memory").rm_file(path)


def faults(**options) -> dict:
    """Set the fault profile of faulty:// URLs (fsspec config: not part of any key)."""
    fsspec.config.conf["faulty"] = options
    return options


@pytest.fixture(autouse=True)
def no_faults():
    yield
    fsspec.config.conf.pop("faulty", None)


def test_fetch_retries_injected_faults_and_returns_intact_bytes(remote_file):
    path, blob, digest = remote_file
    cls = faulty_filesystem_class()
    before = cls.total_faults.copy()
    faults(p_disconnect=0.25, p_truncate=0.25, p_corrupt=0.25, seed=11)
    reads = 0
    for _ in range(30):
        log: list[str] = []
        got = fetch_verified(f"faulty::memory://{path}", digest, retries=30, log=log)
        assert got == blob
        reads += len(log) + 1
    injected = cls.total_faults - before
    assert set(injected) == {"disconnect", "truncate", "corrupt"}
    assert sum(injected.values()) == reads - 30  # every fault was caught and retried
    assert file_digest(f"faulty::memory://{path}", retries=30) == digest


def test_persistently_damaged_remote_file_fails_after_bounded_attempts(remote_file, store):
    path, blob, digest = remote_file
    cls = faulty_filesystem_class()
    url = f"faulty::memory://{path}"
    for kind in ("p_truncate", "p_corrupt", "p_disconnect"):
        faults(**{kind: 1.0})
        before = cls.total_reads[path]
        with pytest.raises(FetchError, match=r"no intact read in 4 attempt") as err:
            fetch_verified(url, digest, retries=3)
        assert cls.total_reads[path] - before == 4
        assert str(err.value).count("attempt ") >= 4
    # in a pipeline: the node fails, nothing downstream runs, nothing is cached
    faults(p_corrupt=1.0)
    p = file_pipeline(url, digest=digest, retries=2)
    res = p.run(store=store)
    assert res.failed == ["image"] and "digest" in res.errors["image"]
    faults()
    ok = p.run(store=store).raise_on_failure()
    assert "image" in ok.misses
    assert np.array_equal(ok["image"].data, from_fits_bytes(blob).data)


def test_without_a_pin_truncation_is_still_caught_by_the_fits_structure(remote_file):
    path, blob, _ = remote_file
    faults(p_truncate=0.5, seed=5)
    log: list[str] = []
    got = fetch_verified(f"faulty::memory://{path}", retries=20, validate=from_fits_bytes, log=log)
    assert got == blob and any("2880" in line or "truncated" in line for line in log)


def test_a_location_from_the_environment_stays_out_of_every_key(tmp_path, store, monkeypatch):
    """With the content pinned, ``${VAR}`` in a URL is expanded only to read the file: moving
    the file and pointing the variable at the new place keeps even the reading node a hit."""
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    (first_dir / "field.fits").write_bytes(field_bytes(4))
    monkeypatch.setenv("ASTRO_TEST_DATA", str(first_dir))
    first = file_pipeline("${ASTRO_TEST_DATA}/field.fits").run(store=store).raise_on_failure()
    shutil.move(first_dir, second_dir)
    monkeypatch.setenv("ASTRO_TEST_DATA", str(second_dir))
    moved = file_pipeline("${ASTRO_TEST_DATA}/field.fits").run(store=store).raise_on_failure()
    assert moved.misses == [] and keys(moved) == keys(first)
    # a changed file under the same variable is still caught by the pin
    (second_dir / "field.fits").write_bytes(field_bytes(5))
    changed = file_pipeline("${ASTRO_TEST_DATA}/field.fits").run(store=store).raise_on_failure()
    assert sorted(changed.misses) == ["cutouts", "image", "phot"]
    monkeypatch.delenv("ASTRO_TEST_DATA")
    with pytest.raises(ValueError, match="ASTRO_TEST_DATA is not set"):
        ReadFitsConfig(url="${ASTRO_TEST_DATA}/field.fits")
