"""The action cache: the one place that decides whether a cache key has a result.

Everything the runner and scans ask of the cache goes through :class:`ActionCache`:

- :meth:`lookup` -- the record of a key, only when it is intact (checksum), filed under that key
  (a copied or misplaced record is not this key's result) and every object it references is
  still stored. Anything else is a miss: when in doubt, recompute.
- :meth:`record` -- write a record, after its objects (batched inside :meth:`batch`).
- plan records -- :meth:`replayable` serves a whole cached run from one record when its plan
  digest, node uids and keys match and every object is still there; :meth:`remember` stores one
  after a complete run; :meth:`hints` gives the newest plan record of a pipeline name by key, so
  a changed plan still finds unchanged nodes in one read.
- retention -- each pipeline name keeps the plan records it used most recently, as many as fit
  in :data:`PLANS_BUDGET_BYTES` (1 to :data:`PLANS_KEPT_MAX`); a plan another name still lists
  is kept.

Why a plan record cannot serve a wrong value: each entry is a genuine action record of its key,
the entries chain (each node's inputs are its upstream's outputs in the same set), and anything
that changes a key changes the plan digest. Plan records only save lookups: dropping them
(gc, repairs, :meth:`drop_plans`) costs speed, never correctness.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable

import msgspec

from ..core.framing import DIGEST_PREFIX, hex_of
from ..core.records import (
    ActionRecord,
    PlanEntry,
    PlanRecord,
    decode_plan,
    decode_record,
    encode_plan,
    encode_record,
)
from .errors import CorruptObjectError
from .record_store import RecordStore

PLANS_BUDGET_BYTES = 64 << 20
PLANS_KEPT_MAX = 4096


def record_objects(record: ActionRecord) -> tuple[str, ...]:
    """Objects a record references (empty, cheaply, for records of inline values)."""
    found: tuple[str, ...] = ()
    for entry in record.outputs.values():
        if entry.objects:
            found += entry.objects
    return found


class ActionCache:
    """Action records and plan records of one store (see the module docstring)."""

    def __init__(self, records: RecordStore, has_objects: Callable[[Iterable[str]], bool]) -> None:
        self.records = records
        self.has_objects = has_objects
        #: name -> the plan this process last made its newest (saves a read per replay; another
        #: process's newer plan only changes which plan serves as hints)
        self._newest: dict[str, str] = {}

    @property
    def layout(self) -> str:
        return self.records.layout

    # -- action records ---------------------------------------------------------------------------

    def get(self, key: str) -> ActionRecord | None:
        """The intact record filed under ``key`` (objects not checked), or None."""
        data = self.records.get(hex_of(key))
        if data is None:
            return None
        try:
            record = decode_record(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        return record if record.key == key else None

    def lookup(self, key: str) -> ActionRecord | None:
        """The record of ``key`` if it can be served: intact, its own, its objects stored."""
        record = self.get(key)
        if record is None:
            return None
        objects = record_objects(record)
        if objects and not self.objects_present(objects):
            return None  # gc or quarantine removed a value: recompute it
        return record

    def objects_present(self, objects: Iterable[str]) -> bool:
        """Every object stored (a reference that is not a digest is damage: a miss)."""
        try:
            return self.has_objects(objects)
        except CorruptObjectError:
            return False

    def record(self, record: ActionRecord) -> None:
        """Write ``record``; call only after every object it references is stored."""
        self.records.put(hex_of(record.key), encode_record(record))

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Commit this process's records in batches while inside (see records_sqlite)."""
        return self.records.deferred()

    def touch(self, key: str) -> None:
        """Mark a record as used now (gc evicts least-recently-used records first)."""
        self.records.touch(hex_of(key))

    def delete(self, keys: Iterable[str]) -> None:
        """Delete records; plan records go too (they hold copies), so the nodes run again."""
        self.drop_plans()
        self.records.delete([hex_of(k) for k in keys])

    def list_keys(self) -> list[str]:
        return [DIGEST_PREFIX + k for k in self.records.list_keys()]

    def raw(self, key: str) -> bytes | None:
        """The stored bytes of a record (not decoded nor checked), or None."""
        return self.records.get(hex_of(key))

    # -- plan records ---------------------------------------------------------------------------

    def plan(self, digest: str) -> PlanRecord | None:
        """The plan record of ``digest`` (None: absent, damaged, or filed under another)."""
        data = self.records.get_plan(hex_of(digest))
        if data is None:
            return None
        try:
            record = decode_plan(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        return record if record.plan == digest else None

    def replayable(self, digest: str, uids: list[str]) -> PlanRecord | None:
        """The plan record of ``digest`` if it serves these nodes now: same uids in order,
        every record filed under its key, every referenced object still stored."""
        record = self.plan(digest)
        if record is None or len(record.nodes) != len(uids):
            return None
        has_objects = self.objects_present
        for uid, entry in zip(uids, record.nodes, strict=True):
            if uid != entry.uid or entry.record.key != entry.key:
                return None
            objects = record_objects(entry.record)
            if objects and not has_objects(objects):
                return None  # the per-node path recomputes what is missing
        return record

    def hints(self, name: str | None) -> dict[str, PlanEntry]:
        """Entries of the newest plan record of pipeline ``name``, by key."""
        if name is None:
            return {}
        newest = self.records.recent(name)[:1]
        record = self.plan(DIGEST_PREFIX + newest[0]) if newest else None
        if record is None:
            return {}
        return {e.key: e for e in record.nodes if e.record.key == e.key}

    def remember(self, record: PlanRecord, name: str | None) -> None:
        """Store a complete run's plan record and make it the newest of ``name``. Best effort:
        a full disk or a read-only store must not fail a finished run."""
        data = encode_plan(record)
        with contextlib.suppress(OSError, sqlite3.Error):
            self.records.put_plan(hex_of(record.plan), data)
            if name is not None:
                self._mark_used(name, hex_of(record.plan), len(data))

    def note_replayed(self, digest: str, name: str) -> None:
        """After a replay: make its plan the newest of ``name`` unless it already is (no write
        when the same pipeline is re-run again and again)."""
        key = hex_of(digest)
        if self._newest.get(name) == key:  # this process made it the newest: nothing to read
            return
        with contextlib.suppress(OSError, sqlite3.Error):
            if self.records.recent(name)[:1] != [key]:
                self._mark_used(name, key, len(self.records.get_plan(key) or b"x"))
            self._newest[name] = key

    def _mark_used(self, name: str, key: str, size: int) -> None:
        """The one retention policy (see the module docstring)."""
        keep = max(1, min(PLANS_KEPT_MAX, PLANS_BUDGET_BYTES // max(1, size)))
        self.records.mark_recent(name, key)
        self._newest[name] = key
        dropped = self.records.recent(name, skip=keep)
        if dropped:
            self.records.unlist(name, dropped)
            still = self.records.listed(dropped)
            self.records.delete_plans([k for k in dropped if k not in still])

    def drop_plans(self) -> None:
        """Delete every plan record (they only speed up re-runs; gc and repairs drop them)."""
        self._newest.clear()
        self.records.drop_plans()

    def plan_stats(self) -> tuple[int, int]:
        return self.records.plan_stats()

    def stats(self) -> tuple[int, int]:
        return self.records.stats()

    def entries(self) -> dict[str, tuple[int, float]]:
        return self.records.entries()
