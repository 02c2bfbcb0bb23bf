"""A damaged actions.sqlite is moved aside and replaced, never a crash (issue 12, class 8)."""

from __future__ import annotations

import pytest

import physflow as pf
from physflow.artifacts.layout import DamagedRecordsWarning

from . import hardening_stages as S


def _pipeline():
    p = pf.Pipeline("db")
    p.add("f", S.fir_sum, S.Taps(taps=[1.0, 2.0]))
    return p


@pytest.mark.parametrize("damage", ["truncate", "overwrite"])
def test_a_damaged_record_database_is_replaced(tmp_path, damage):
    root = tmp_path / "s"
    assert _pipeline().run(store=root).misses == ["f"]
    db = root / "actions.sqlite"
    data = db.read_bytes()
    db.write_bytes(data[:100] if damage == "truncate" else b"\x00garbage" * 500)
    for suffix in ("-wal", "-shm"):
        (root / f"actions.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.warns(DamagedRecordsWarning, match="moved to"):
        store = pf.Store(root)
    res = _pipeline().run(store=store)
    assert res.ok and res["f"] == 3.0  # recomputed from scratch: the objects were intact
    assert list((root / "quarantine").glob("actions.sqlite.damaged-*"))
    assert pf.Store(root).verify().ok


def test_cache_verify_never_crashes_on_a_damaged_database(tmp_path, capsys):
    from physflow.cli import main

    root = tmp_path / "s"
    _pipeline().run(store=root)
    (root / "actions.sqlite").write_bytes(b"not a database" * 100)
    with pytest.warns(DamagedRecordsWarning):
        code = main(["cache", "verify", "--store", str(root)])
    assert code == 0 and "Traceback" not in capsys.readouterr().err
