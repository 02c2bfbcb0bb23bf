"""Stored data is data: decoding never imports or calls code it names; names from disk never
become paths outside the store; links are never followed (issue 12, classes 10 and 11)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import physflow as pf
from physflow.core.records import ActionRecord, OutputEntry
from physflow.core.value_types import UntrustedTypeError

from . import hardening_stages as S


def _record_with_tree(store, key, tree, objects=()):
    entry = OutputEntry(digest="b3:" + "0" * 64, tree=tree, objects=tuple(objects))
    store.put_action(
        ActionRecord(key=key, stage="forged", fingerprint="f", outputs={"value": entry}, created=0)
    )
    return entry


@pytest.mark.parametrize(
    "tree",
    [
        ["S", "os:system", {}],
        ["E", "subprocess:Popen", ["s", "touch /tmp/pwned"]],
        ["S", "tests.reliability.side_effect_module:Anything", {}],
    ],
    ids=["struct-os-system", "enum-popen", "importing-a-module"],
)
def test_a_forged_record_never_imports_or_calls_code(tmp_path, tree):
    store = pf.Store(tmp_path / "s")
    sys.modules.pop("tests.reliability.side_effect_module", None)
    entry = _record_with_tree(store, "b3:" + "1" * 64, tree)
    with pytest.raises(UntrustedTypeError, match="never imports code"):
        store.get_value(entry)
    assert "tests.reliability.side_effect_module" not in sys.modules
    assert not (tmp_path / "pwned").exists()


def test_registered_value_types_still_round_trip_in_a_fresh_registry(tmp_path):
    store = pf.Store(tmp_path / "s")
    entry = store.put_value(S.Taps(taps=[1.0, 2.0]))
    assert store.get_value(entry) == S.Taps(taps=[1.0, 2.0])


@pytest.mark.parametrize("bad", ["b3:../../../etc/passwd", "b3:" + "a" * 63 + "/", "../x"])
def test_a_digest_from_disk_never_becomes_a_path(tmp_path, bad):
    store = pf.Store(tmp_path / "s")
    entry = _record_with_tree(store, "b3:" + "2" * 64, ["o", "array", bad], objects=[bad])
    with pytest.raises(pf.CorruptObjectError, match="not an object digest"):
        store.get_value(entry)
    with pytest.raises(pf.CorruptObjectError):
        store.object_path(bad)
    assert store.actions.lookup("b3:" + "2" * 64) is None  # a forged reference is a miss


def test_a_forged_plan_pointer_is_ignored(tmp_path):
    store = pf.Store(tmp_path / "s", actions="files")
    p = pf.Pipeline("p")
    p.add("f", S.fir_sum, S.Taps(taps=[1.0]))
    p.run(store=store)
    latest = next((store.root / "plans" / "latest").iterdir())
    latest.write_text("../../../../tmp/evil\nb3:../x\n")
    assert store.records.recent("p") == []
    assert p.run(store=store).hits == ["f"]


def test_links_are_never_followed_out_of_the_store(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    store = pf.Store(tmp_path / "s")
    entry = store.put_value(np.arange(10_000.0))
    chunk = next(p for p in store.object_path(entry.digest).rglob("*") if p.name == "0")
    chunk.unlink()
    os.symlink(outside / "precious.txt", chunk)  # an object's chunk replaced by a link
    with pytest.raises((pf.CorruptObjectError, pf.MissingObjectError)):
        store.get_value(entry)
    os.symlink(outside, store.root / "tmp" / "12345-linked")
    store.gc(tmp_grace_s=0.0)
    store.verify()
    assert (outside / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("sub", ["tmp", "objects"])
def test_a_store_whose_tmp_or_objects_is_a_link_is_refused(tmp_path, sub):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    store = pf.Store(tmp_path / "s")
    root = store.root
    import shutil

    shutil.rmtree(root / sub)
    os.symlink(outside, root / sub)
    with pytest.raises(pf.StoreLocationError, match="symlink"):
        pf.Store(root).gc(tmp_grace_s=0.0)
    assert (outside / "precious.txt").read_text() == "keep me"


def test_pickle_stays_refused_without_opt_in(tmp_path):
    entry = pf.Store(tmp_path / "s").put_value(S.Opaque(3), allow_pickle=True)
    assert entry.unsafe
    with pytest.raises(pf.PickleNotAllowedError):
        pf.Store(tmp_path / "s").get_value(entry)
    assert pf.Store(tmp_path / "s", allow_pickle=True).get_value(entry).n == 3
