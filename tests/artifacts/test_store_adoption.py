"""A directory becomes a store only on purpose; the stamp records the digest format."""

from __future__ import annotations

import json

import pytest

import physflow as pf
from physflow.artifacts.errors import StoreError
from physflow.core.framing import HASH_FORMAT


def test_new_and_empty_directories_become_stores(tmp_path):
    pf.Store(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    store = pf.Store(tmp_path / "empty")
    stamp = json.loads((store.root / "store.json").read_text())
    assert stamp["hash_format"] == HASH_FORMAT and stamp["actions"] == "sqlite"


@pytest.mark.parametrize("action", ["open", "gc", "verify", "stats"])
def test_a_project_folder_is_never_adopted(tmp_path, action):
    project = tmp_path / "project"
    (project / "tmp").mkdir(parents=True)
    (project / "tmp" / "notes.txt").write_text("mine")
    (project / "analysis.py").write_text("print(1)")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    with pytest.raises(StoreError, match=r"not a physflow store.*analysis\.py"):
        store = pf.Store(project)
        getattr(store, action, lambda: None)()
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    assert (project / "tmp" / "notes.txt").read_text() == "mine"


def test_cli_refuses_a_project_folder_and_an_empty_store_path(tmp_path, capsys):
    from physflow.cli import main

    (tmp_path / "analysis.py").write_text("print(1)")
    assert main(["cache", "gc", "--store", str(tmp_path)]) == 2
    assert "not a physflow store" in capsys.readouterr().err
    assert (tmp_path / "analysis.py").exists() and not (tmp_path / "store.json").exists()
    assert main(["cache", "stats", "--store", ""]) == 2
    assert "--store is empty" in capsys.readouterr().err


def test_a_store_made_before_stamps_is_still_adopted(tmp_path):
    old = tmp_path / "old"
    (old / "objects").mkdir(parents=True)
    (old / "actions" / "ab").mkdir(parents=True)
    (old / "manifests").mkdir()
    assert pf.Store(old).actions_layout == "files"


def test_a_store_from_a_newer_digest_format_is_refused(tmp_path):
    store = pf.Store(tmp_path / "s")
    stamp = json.loads((store.root / "store.json").read_text())
    stamp["hash_format"] = HASH_FORMAT + 1
    (store.root / "store.json").write_text(json.dumps(stamp))
    with pytest.raises(StoreError, match="digest format"):
        pf.Store(tmp_path / "s")
