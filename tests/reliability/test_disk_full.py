"""A full disk: errors name the store and node; nothing partial is kept; a run whose results
were stored but whose manifest could not be written still returns them (issue 12, class 9)."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import pytest

import physflow as pf
from physflow.pipeline.run import ManifestNotWrittenWarning

from . import hardening_stages as S


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (needs root and mount permission; skipped cleanly otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _run(store, mib):
    p = pf.Pipeline("full")
    p.add("big", S.block, S.Size(mib=mib))
    return p.run(store=store)


def test_disk_full_names_store_and_node_and_keeps_nothing_partial(small_disk):
    store = pf.Store(small_disk / "store")
    res = _run(store, 8.0)
    assert res.failed == ["big"]
    error = res.errors["big"]
    assert str(small_disk / "store") in error and "node 'big'" in error
    assert "No space left" in error
    assert not any((small_disk / "store" / "tmp").iterdir())  # nothing partial kept
    assert pf.Store(small_disk / "store").verify().ok
    ok = _run(store, 0.5)  # what fits still works, and is a hit next time
    assert ok.ok and _run(store, 0.5).hits == ["big"]


def test_manifest_that_cannot_be_written_still_returns_the_result(tmp_path):
    store = pf.Store(tmp_path / "s")
    shutil.rmtree(store.root / "manifests")
    (store.root / "manifests").write_text("not a directory")  # writing a manifest fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _run(store, 0.01)
    assert res.ok and res["big"].sum() == int(0.01 * (1 << 20) / 8)
    assert res.manifest_path is None
    assert any(issubclass(w.category, ManifestNotWrittenWarning) for w in caught)
    assert res.manifest.nodes[0].status == "miss"  # the manifest itself is still returned
