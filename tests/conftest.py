"""Shared test helpers: action records through a store's real storage, for both layouts."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest


class RawRecords:
    """Read, overwrite and age action records through the real storage (sqlite3 on the
    store's actions.sqlite, or the record files), not through Store methods: tests damage,
    copy and age records the way a disk fault or another program would."""

    def __init__(self, store) -> None:
        self.store = store
        self.sqlite = store.actions_layout == "sqlite"

    @staticmethod
    def _hex(key: str) -> str:
        return key.split(":", 1)[-1]

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.store.root / "actions.sqlite", isolation_level=None, timeout=60)

    def key_list(self) -> list[str]:
        """Hex keys of every stored record."""
        if self.sqlite:
            with self._db() as db:
                return sorted(k for (k,) in db.execute("SELECT key FROM actions"))
        return sorted(p.name for p in self.store.actions_dir.rglob("*") if p.is_file())

    def read(self, key: str) -> bytes | None:
        h = self._hex(key)
        if self.sqlite:
            with self._db() as db:
                row = db.execute("SELECT record FROM actions WHERE key = ?", (h,)).fetchone()
            return None if row is None else bytes(row[0])
        path = self.store.action_path(key)
        return path.read_bytes() if path.exists() else None

    def write(self, key: str, data: bytes) -> None:
        h = self._hex(key)
        if self.sqlite:
            with self._db() as db:
                db.execute(
                    "INSERT OR REPLACE INTO actions(key, record, written) VALUES (?, ?, ?)",
                    (h, data, time.time()),
                )
        else:
            path = self.store.action_path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def set_time(self, key: str, t: float) -> None:
        """Make the record look written (and last touched) at ``t``."""
        if self.sqlite:
            with self._db() as db:
                db.execute(
                    "UPDATE actions SET written = ?, used = NULL WHERE key = ?", (t, self._hex(key))
                )
        else:
            os.utime(self.store.action_path(key), (t, t))


@pytest.fixture
def raw_records():
    """``raw_records(store)`` -> :class:`RawRecords`."""
    return RawRecords


@pytest.fixture(params=["sqlite", "files"])
def actions_layout(request) -> str:
    """Both action-record layouts; build a store with ``pf.Store(path, actions=actions_layout)``."""
    return request.param
