"""A store on a network filesystem (NFS, Lustre: the files layout, no SQLite locking) shared
by several "hosts": separate processes, each with its own local tier. 0 wrong, 0 lost."""

from __future__ import annotations

import json
import subprocess

import pytest

import physflow as pf

from .conftest import worker
from .remote_worker import expected_mean

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["file-url-with-tiers", "path-files-layout"])
def test_hosts_share_a_files_layout_store(tmp_path, how):
    shared = tmp_path / "nfs" / "store"
    if how == "path-files-layout":
        pf.Store(shared, actions="files")  # the stamp every host then finds
        location = str(shared)
    else:
        location = f"file://{shared}"
    go = tmp_path / "go"
    procs = [
        worker(
            "overlap",
            json.dumps(
                {
                    "url": location,
                    "options": None,
                    "cache_dir": str(tmp_path / f"host{w}") if how != "path-files-layout" else "",
                }
            ),
            str(w),
            str(go),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    go.touch()
    digests: dict[str, set[str]] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        for node, d in result["digests"].items():
            digests.setdefault(node, set()).add(d)
        for node, mean in result["means"].items():
            assert mean == expected_mean(int(node[4:])), node  # 0 wrong
    assert all(len(ds) == 1 for ds in digests.values()), digests
    store = pf.Store(location)
    assert store.actions_layout == "files"
    keys = store.actions.list_keys()
    assert len(keys) == 7 + 7 + 2  # seeds 0..6 (big, mean), field, sums: 0 lost
    for key in keys:
        for entry in store.get_action(key).outputs.values():
            store.get_value(entry)
    report = store.verify(quarantine=False)
    assert report.ok and report.objects_checked == 7 + 1, str(report)
    if how == "file-url-with-tiers":  # each host read through its own tier
        assert all((tmp_path / f"host{w}" / "data" / "objects").is_dir() for w in range(4))
