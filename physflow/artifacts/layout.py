"""Which layout a store keeps its action records in, stamped once in ``store.json``.

New local store: SQLite unless asked otherwise; local stores made before stamps existed keep
their record files; fsspec URLs always use files. The stamp is published with a no-replace
link, so processes that open a new store at the same time agree on one layout.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
import warnings
from typing import TYPE_CHECKING

import msgspec

from ..core.framing import HASH_FORMAT
from .backend import tmp_name
from .errors import StoreError, StoreLocationError
from .records_sqlite import DB_NAME, SqliteRecords, create_db

if TYPE_CHECKING:
    from .store import Store

STAMP_NAME = "store.json"
STORE_FORMAT = 1
LAYOUTS = ("sqlite", "files")
#: What a physflow store's root may hold; a directory holding anything else is not adopted.
KNOWN_ENTRIES = frozenset(
    {
        STAMP_NAME,
        DB_NAME,
        f"{DB_NAME}-wal",
        f"{DB_NAME}-shm",
        "objects",
        "actions",
        "plans",
        "manifests",
        "tmp",
        "quarantine",
        "datasets",
        "claims",
    }
)


def resolve_layout(store: Store, wanted: str | None) -> str:
    """The actions layout stamped in ``store.json``; stamps it when the store has none.

    New local store: ``wanted`` or "sqlite". Local store made before stamps existed (it has
    ``objects/`` or ``actions/`` but no stamp): "files", so it keeps working. fsspec URLs:
    always "files". The stamp is published with a no-replace link, so processes that open a
    new store at the same time agree on one layout.
    """
    try:
        raw = store.backend.read(STAMP_NAME)
    except FileNotFoundError:
        raw = None
    if raw is not None:
        return _check_layout(store, _read_stamp(store, raw), wanted)
    _check_adoptable(store)
    if not store._local:
        layout = "files"
    elif os.path.exists(f"{store.root}/{DB_NAME}"):
        layout = "sqlite"
    elif os.path.isdir(store.objects_dir) or os.path.isdir(store.actions_dir):
        layout = "files"  # made by an earlier version: its records are files
    else:
        layout = wanted or "sqlite"
    return _check_layout(store, _write_stamp(store, layout), wanted)


def _read_stamp(store: Store, raw: bytes) -> str:
    """The layout a stamp names; a stamp from a newer digest encoding is refused (its keys
    would never match ours: every lookup would miss and every result be stored twice)."""
    try:
        stamp = msgspec.json.decode(raw)
        found = stamp["actions"]
        hash_format = stamp.get("hash_format", 1)
        if found not in LAYOUTS or not isinstance(hash_format, int):
            raise ValueError(found)
    except (msgspec.DecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(
            f"{store.location}/{STAMP_NAME} is not a valid store stamp ({exc!r}); it "
            'should read {"format": 1, "actions": "sqlite"} or "files": restore it'
        ) from None
    if hash_format > HASH_FORMAT:
        raise StoreLocationError(
            f"the store at {store.location} was written with digest format {hash_format}; "
            f"this physflow uses format {HASH_FORMAT}. Upgrade physflow to use that store."
        )
    return found


def _check_adoptable(store: Store) -> None:
    """A directory becomes a store only on purpose: an empty or new one, or a store made
    before stamps existed (nothing but store entries in it). Anything else is refused before a
    single file is written, so no user file is ever touched."""
    try:
        entries = store.backend.listdir("")
    except (NotADirectoryError, FileNotFoundError):
        entries = []
    unknown = sorted(e for e in entries if e not in KNOWN_ENTRIES)
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise StoreLocationError(
            f"{store.location} is not a physflow store (no {STAMP_NAME}) and is not empty (it "
            f"holds {shown}); physflow will not turn it into one. Pass an empty or new "
            "directory (e.g. ./.physflow) or the path of an existing store."
        )


def _check_layout(store: Store, found: str, wanted: str | None) -> str:
    if not store._local and wanted == "sqlite":
        raise StoreError(
            f"Store({store.location!r}, actions='sqlite'): SQLite records need a local "
            "directory; fsspec URLs keep one file per record (omit actions=)"
        )
    if not store._local and found == "sqlite":
        raise StoreError(
            f"the store at {store.location} keeps its action records in SQLite "
            f"({STAMP_NAME} says actions={found!r}); open it by its local path, not a URL"
        )
    if wanted is not None and wanted != found:
        raise StoreError(
            f"Store({store.location!r}, actions={wanted!r}): this store keeps its action "
            f"records as {found!r} ({store.location}/{STAMP_NAME}); open it without "
            f"actions= (or with actions={found!r}), or use a new store directory for "
            f"actions={wanted!r}"
        )
    return found


def _write_stamp(store: Store, layout: str) -> str:
    """Publish the stamp unless one appeared meanwhile; returns the stamp that won."""
    stamp = {"format": STORE_FORMAT, "actions": layout, "hash_format": HASH_FORMAT}
    data = msgspec.json.encode(stamp)
    if not store._local:
        store.backend.makedirs("tmp")
        store.backend.write_atomic(STAMP_NAME, data)
        return layout
    os.makedirs(store.root, exist_ok=True)
    os.makedirs(store.tmp_dir, exist_ok=True)
    tmp = f"{store.tmp_dir}/{tmp_name('.stamp')}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.link(tmp, f"{store.root}/{STAMP_NAME}")
    except FileExistsError:
        return _read_stamp(store, store.backend.read(STAMP_NAME))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return layout


def check_local_dirs(root: str, names: tuple[str, ...]) -> None:
    """Refuse a local store whose top-level entries are symlinks or not directories:
    maintenance moves and deletes inside them and must never reach outside the store."""
    for name in names:
        path = os.path.join(root, name)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            raise StoreLocationError(
                f"{path} is a symlink or not a directory; a store's {name}/ must be a real "
                "directory inside it (physflow never follows links out of a store)"
            )


class DamagedRecordsWarning(UserWarning):
    """A store's record database was unreadable and was replaced by a fresh one."""


def open_sqlite_records(store: Store) -> SqliteRecords:
    """The store's record database; a damaged one (truncated, overwritten) is moved to
    ``quarantine/`` and a fresh one started. Objects are intact, so work is recomputed, never
    served wrong."""
    db_path = f"{store.root}/{DB_NAME}"
    for attempt in range(2):
        if not os.path.exists(db_path):
            create_db(db_path, f"{store.tmp_dir}/{tmp_name('.sqlite')}")
        records = SqliteRecords(db_path)
        try:
            records.probe()
            return records
        except sqlite3.OperationalError:
            raise  # locked: not damage
        except sqlite3.DatabaseError as exc:
            records.close()
            if attempt:
                raise StoreError(f"cannot open the record database {db_path}: {exc}") from None
            _move_aside(store, db_path, exc)
    raise AssertionError("unreachable")


def _move_aside(store: Store, db_path: str, exc: Exception) -> None:
    aside = f"{store.root}/quarantine/{DB_NAME}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    aside += f"-{uuid.uuid4().hex[:6]}"
    os.makedirs(os.path.dirname(aside), exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):  # another process may have moved it
            os.rename(db_path + suffix, aside + suffix)
    warnings.warn(
        DamagedRecordsWarning(
            f"the record database {db_path} is damaged ({exc}); it was moved to {aside} and a "
            "fresh one started: cached results are recomputed (never served wrong)."
        ),
        stacklevel=4,
    )
