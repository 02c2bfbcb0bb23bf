"""Shared test helpers: a hermetic environment for every test, and action records through a
store's real storage, for both layouts."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Stores a test must never read or write: the checkout's default store and the user's.
GUARDED_STORES = (ROOT / ".physflow", Path.home() / ".physflow")


def _snapshot(root: Path, limit: int = 50_000) -> dict[str, tuple[int, int]] | None:
    """(mtime, size) of every entry under ``root`` (None when it does not exist)."""
    if not root.exists():
        return None
    found: dict[str, tuple[int, int]] = {}
    for here, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            st = os.lstat(os.path.join(here, name))
            found[os.path.join(here, name)] = (st.st_mtime_ns, st.st_size)
            if len(found) >= limit:
                return found
    return found


@pytest.fixture(scope="session", autouse=True)
def _guard_real_stores():
    """Fails the session if any test created or changed ./.physflow or ~/.physflow."""
    before = {p: _snapshot(p) for p in GUARDED_STORES}
    yield
    changed = [str(p) for p in GUARDED_STORES if _snapshot(p) != before[p]]
    assert not changed, f"tests touched a real store: {changed}; pass store=tmp_path / 'store'"


@pytest.fixture(scope="session")
def _test_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def hermetic(monkeypatch, tmp_path_factory, _test_home) -> Path:
    """Every test runs in its own empty working directory, with ``$PHYSFLOW_STORE`` inside it
    and ``$HOME`` in a temporary directory, so nothing reads or writes the checkout's
    ``./.physflow``, the user's store or home (subprocesses inherit this environment).
    Returns the working directory."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(_test_home))
    monkeypatch.setenv("PHYSFLOW_STORE", str(cwd / "env-store"))
    return cwd


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
