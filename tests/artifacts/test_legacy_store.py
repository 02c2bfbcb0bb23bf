"""A store written before the kernel rebuild (physflow 58974f7, both record layouts) opens and hits.

The fixture ``data/store-58974f7.tar.gz`` holds the stores that commit wrote for
``legacy_store_stages.pipeline()``: records, objects, plan records and an (unsealed) manifest.
Only what the hardening changed on purpose misses: ``smooth``'s config class has a method, whose
source now enters the config digest (one recompute, same bytes, so its consumer still hits).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

import physflow as pf

from . import legacy_store_stages as stages

FIXTURE = Path(__file__).parent / "data" / "store-58974f7.tar.gz"
#: Nodes whose keys changed by design since 58974f7 (see the module docstring).
CHANGED_ON_PURPOSE = {"smooth"}


@pytest.fixture
def legacy_root(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


@pytest.mark.parametrize("layout", ["sqlite", "files"])
def test_a_store_from_before_the_kernel_rebuild_hits(legacy_root: Path, tmp_path: Path, layout):
    store = pf.Store(legacy_root / layout)
    assert store.actions_layout == layout
    assert store.verify().ok

    res = stages.pipeline().run(store=store)
    status = {node.id: node.status for node in res.manifest.nodes}
    assert {n for n, s in status.items() if s == "miss"} == CHANGED_ON_PURPOSE
    assert all(s == "hit" for n, s in status.items() if n not in CHANGED_ON_PURPOSE)

    fresh = stages.pipeline().run(store=pf.Store(tmp_path / "fresh"))
    for node in ("make", "scale", "noise", "smooth"):
        np.testing.assert_array_equal(res[node], fresh[node])
        assert res.digest(node) == fresh.digest(node)
    assert res["total"] == fresh["total"] and res["smoothed_total"] == fresh["smoothed_total"]
    assert res["split"]["label"] == "split of 4096"
    assert store.verify().ok


@pytest.mark.parametrize("layout", ["sqlite", "files"])
def test_its_manifest_still_reads(legacy_root: Path, layout):
    (path,) = (legacy_root / layout / "manifests").glob("*.json")
    manifest = pf.load_manifest(path)
    assert list(manifest.nodes) == list(stages.pipeline().nodes)
    assert all(n.status == "miss" for n in manifest.nodes.values())
    np.testing.assert_array_equal(manifest.open("make"), np.arange(4096, dtype=np.float64))
