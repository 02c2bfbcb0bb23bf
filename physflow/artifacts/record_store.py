"""Where action records and plan records are kept: the small ``RecordStore`` interface.

Two implementations, chosen once when a :class:`~physflow.artifacts.store.Store` opens (the
layout stamped in ``store.json``): :class:`~.records_sqlite.SqliteRecords` (one database file,
local stores) and :class:`FileRecords` (one file per record: fsspec URLs, network filesystems,
stores made by earlier versions). Keys are hex digests without the ``b3:`` prefix. Everything
above this interface -- decoding, checksums, object checks, plan retention -- lives once, in
:class:`~.action_cache.ActionCache`.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterable
from typing import Any, Protocol

import blake3
import msgspec

from ..core.framing import hex_of
from ..core.names import is_hex_key
from ..core.records import decode_plan, decode_record
from .backend import tmp_name

PLANS_DIR = "plans"
#: Compare-and-swap attempts on a recent-plans list before giving up (it is only an accelerator).
CAS_ATTEMPTS = 16


class RecordStore(Protocol):
    """Bytes by key for action records and plan records, plus per-name lists of recent plans."""

    layout: str

    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, data: bytes) -> None: ...
    def touch(self, key: str) -> None: ...
    def delete(self, keys: Iterable[str]) -> None: ...
    def list_keys(self) -> list[str]: ...
    def entries(self) -> dict[str, tuple[int, float]]:
        """key -> (record bytes, last write or use time), for gc."""
        ...

    def stats(self) -> tuple[int, int]:
        """(records, bytes on disk)."""
        ...

    def deferred(self) -> contextlib.AbstractContextManager[None]: ...
    def get_plan(self, key: str) -> bytes | None: ...
    def put_plan(self, key: str, data: bytes) -> None: ...
    def delete_plans(self, keys: Iterable[str]) -> None: ...
    def drop_plans(self) -> None: ...
    def plan_stats(self) -> tuple[int, int]: ...
    def mark_recent(self, name: str, key: str) -> None:
        """Plan ``key`` was just used by pipeline ``name`` (newest first in its list)."""
        ...

    def recent(self, name: str, skip: int = 0) -> list[str]:
        """Plans ``name`` used, newest first, after the first ``skip``."""
        ...

    def unlist(self, name: str, keys: Iterable[str]) -> None: ...
    def listed(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that some name still lists."""
        ...


def _latest_rel(name: str) -> str:
    return f"{PLANS_DIR}/latest/{blake3.blake3(name.encode()).hexdigest()[:32]}"


def _plan_rel(key: str) -> str:
    return f"{PLANS_DIR}/{key[:2]}/{key}"


def _read_small(path: str) -> bytes:
    """Read a small file with raw os calls (a third of the cost of ``open().read()``)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # never follow a link
    try:
        data = os.read(fd, 1 << 16)
        if len(data) == 1 << 16:
            parts = [data]
            while chunk := os.read(fd, 1 << 20):
                parts.append(chunk)
            data = b"".join(parts)
        return data
    finally:
        os.close(fd)


def _record_of(key: str, data: bytes) -> bool:
    """Whether ``data`` is an intact action record filed under hex ``key``."""
    try:
        return hex_of(decode_record(data).key) == key
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


def _plan_of(key: str, data: bytes) -> bool:
    try:
        return hex_of(decode_plan(data).plan) == key
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


class FileRecords:
    """One file per record (``actions/ab/<key>``), per plan (``plans/ab/<key>``) and per name
    list (``plans/latest/<hash of name>``), each published whole (temp file + rename).

    On backends with create-only writes (object stores: ``backend.create``), records and plans
    are published create-only: the first writer of a key wins, a later one that finds an intact
    record of the same key is done (records of one key are equivalent), and a damaged one is
    deleted and replaced. The recent-plans lists are then replaced by compare-and-swap.
    """

    layout = "files"

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._local = backend.is_local
        self._prefix = backend.abspath("actions/")
        self._tmp = backend.abspath("tmp")
        self._known_dirs: set[str] = set()
        backend.makedirs("actions")

    def get(self, key: str) -> bytes | None:
        try:
            if self._local:
                return _read_small(f"{self._prefix}{key[:2]}/{key}")
            return self.backend.read(f"actions/{key[:2]}/{key}")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def put(self, key: str, data: bytes) -> None:
        if not self._local:
            self._put_once(f"actions/{key[:2]}/{key}", data, lambda d: _record_of(key, d))
            return
        parent = f"{self._prefix}{key[:2]}"
        tmp = f"{self._tmp}/{tmp_name('.rec')}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            if parent not in self._known_dirs:
                os.makedirs(parent, exist_ok=True)
                self._known_dirs.add(parent)
            try:
                os.replace(tmp, f"{parent}/{key}")
            except FileNotFoundError:  # the prefix dir was removed since we saw it
                os.makedirs(parent, exist_ok=True)
                os.replace(tmp, f"{parent}/{key}")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def touch(self, key: str) -> None:
        """Bump a record's time for gc's LRU order. On object stores a bump is a rewrite (a GET
        and a PUT per hit): skipped there; gc orders by manifests and write times instead."""
        if self._local:
            with contextlib.suppress(OSError):
                os.utime(f"{self._prefix}{key[:2]}/{key}")

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.backend.remove(f"actions/{key[:2]}/{key}")

    def list_keys(self) -> list[str]:
        return [
            name
            for shard in self.backend.listdir("actions")
            for name in self.backend.listdir(f"actions/{shard}")
        ]

    def entries(self) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        for rel, size, mtime in self.backend.walk("actions"):
            parts = rel.split("/")
            if len(parts) > 2:
                out[parts[2]] = (size, mtime)
        return out

    def stats(self) -> tuple[int, int]:
        entries = self.entries()
        return len(entries), sum(size for size, _ in entries.values())

    def deferred(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # each record is its own file: nothing to batch

    def get_plan(self, key: str) -> bytes | None:
        try:
            return self.backend.read(_plan_rel(key))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def put_plan(self, key: str, data: bytes) -> None:
        if self._local:
            self.backend.write_atomic(_plan_rel(key), data)
        else:
            self._put_once(_plan_rel(key), data, lambda d: _plan_of(key, d))

    def _put_once(self, rel: str, data: bytes, intact: Any) -> None:
        """Create-only write (where the backend has one): a lost race is success when the
        existing entry is intact and filed under the same key; a damaged one is replaced."""
        create = getattr(self.backend, "create", None)
        if create is None:
            self.backend.write_atomic(rel, data)
            return
        for _attempt in range(3):
            if create(rel, data):
                return
            try:
                theirs = self.backend.read(rel)
            except FileNotFoundError:
                continue  # deleted meanwhile (gc): try again
            if theirs == data or intact(theirs):
                return
            self.backend.delete_if(rel, theirs)  # damaged: never served, so replace it
        raise OSError(f"could not publish {self.backend.abspath(rel)}: it keeps changing")

    def delete_plans(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.backend.remove(_plan_rel(key))

    def drop_plans(self) -> None:
        self.backend.remove(PLANS_DIR)

    def plan_stats(self) -> tuple[int, int]:
        sizes = [
            size
            for rel, size, _mtime in self.backend.walk(PLANS_DIR)
            if not rel.startswith(f"{PLANS_DIR}/latest/")
        ]
        return len(sizes), sum(sizes)

    def _list(self, rel: str) -> list[str]:
        try:
            return self._decode_list(self.backend.read(rel))
        except (FileNotFoundError, IsADirectoryError):
            return []

    @staticmethod
    def _decode_list(data: bytes) -> list[str]:
        try:
            keys = [hex_of(k) for k in data.decode().split("\n") if k]
        except UnicodeDecodeError:
            return []
        return [k for k in keys if is_hex_key(k)]  # anything else is damage, never a path

    def _update_list(self, rel: str, change: Any) -> None:
        """Replace a recent-plans list with ``change(old list)``: compare-and-swap where the
        backend has it (object stores), else whole-file replace. Losing an update loses only an
        accelerator; a wrong plan is never served (plans are checked by digest and checksum)."""
        read_tagged = getattr(self.backend, "read_tagged", None)
        if read_tagged is None:
            self.backend.write_atomic(rel, "\n".join(change(self._list(rel))).encode())
            return
        for attempt in range(CAS_ATTEMPTS):
            found = read_tagged(rel)
            old, tag = ([], None) if found is None else (self._decode_list(found[0]), found[1])
            if self.backend.replace(rel, "\n".join(change(old)).encode(), tag):
                return
            time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))  # let the winner finish

    def mark_recent(self, name: str, key: str) -> None:
        self._update_list(_latest_rel(name), lambda old: [key] + [k for k in old if k != key])

    def recent(self, name: str, skip: int = 0) -> list[str]:
        return self._list(_latest_rel(name))[skip:]

    def unlist(self, name: str, keys: Iterable[str]) -> None:
        gone = set(keys)
        self._update_list(_latest_rel(name), lambda old: [k for k in old if k not in gone])

    def listed(self, keys: Iterable[str]) -> set[str]:
        wanted = set(keys)
        found: set[str] = set()
        for entry in self.backend.listdir(f"{PLANS_DIR}/latest"):
            found.update(k for k in self._list(f"{PLANS_DIR}/latest/{entry}") if k in wanted)
        return found
