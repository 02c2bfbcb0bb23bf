"""Store maintenance, part 2: stats and gc.

:func:`gc` removes abandoned temp entries (writer dead, or older than a grace period), then
evicts records least-recently-used first (a record's last use is the newest run manifest that
lists its key, or its write time; runs without a manifest bump it with ``ActionCache.touch``)
with the objects that only they reference, until the store fits ``max_bytes`` and no record is
older than ``older_than``; objects referenced by kept manifests are never deleted.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from ..core.framing import DIGEST_PREFIX, hex_of
from ..core.records import decode_record
from .errors import StoreError

if TYPE_CHECKING:
    from .store import Store


# -- stats ---------------------------------------------------------------------------------------


@dataclass
class KindStats:
    entries: int = 0
    bytes: int = 0


@dataclass
class StoreStats:
    """Entries and bytes, in total and by kind: objects, actions, manifests, tmp, quarantine."""

    entries: int
    bytes: int
    by_kind: dict[str, KindStats]

    def __str__(self) -> str:
        rows = [
            f"{kind:<11} {s.entries:>9} entries {_human(s.bytes):>10}"
            for kind, s in self.by_kind.items()
        ]
        rows.append(f"{'total':<11} {self.entries:>9} entries {_human(self.bytes):>10}")
        return "\n".join(rows)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _sizes_by_entry(store: Store, top: str, depth: int) -> dict[str, tuple[int, float]]:
    """entry name -> (bytes, newest mtime); an entry is the path component at ``depth``."""
    out: dict[str, tuple[int, float]] = {}
    for rel, size, mtime in store.backend.walk(top):
        parts = rel.split("/")
        if len(parts) <= depth:
            continue
        name = parts[depth]
        b, m = out.get(name, (0, 0.0))
        out[name] = (b + size, max(m, mtime))
    return out


def stats(store: Store) -> StoreStats:
    by_kind = {}
    for kind, depth in (("objects", 2), ("manifests", 1), ("tmp", 1), ("quarantine", 1)):
        sizes = _sizes_by_entry(store, kind, depth)
        by_kind[kind] = KindStats(len(sizes), sum(b for b, _ in sizes.values()))
    # records: rows of actions.sqlite (bytes = the database files on disk), or actions/ files
    by_kind["actions"] = KindStats(*store.actions.stats())
    by_kind["plans"] = KindStats(*store.actions.plan_stats())
    if store.actions_layout == "sqlite":  # plan records live in the same database file
        actions = by_kind["actions"]
        actions.bytes = max(0, actions.bytes - by_kind["plans"].bytes)
    order = ("objects", "actions", "plans", "manifests", "tmp", "quarantine")
    by_kind = {k: by_kind[k] for k in order}
    return StoreStats(
        entries=sum(k.entries for k in by_kind.values()),
        bytes=sum(k.bytes for k in by_kind.values()),
        by_kind=by_kind,
    )


# -- gc ------------------------------------------------------------------------------------------


@dataclass
class GcReport:
    dry_run: bool
    bytes_before: int = 0
    bytes_after: int = 0
    removed_actions: list[str] = field(default_factory=list)
    removed_objects: list[str] = field(default_factory=list)
    removed_tmp: list[str] = field(default_factory=list)
    removed_plans: int = 0
    protected_objects: int = 0
    freed_bytes: int = 0

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"gc {verb} {len(self.removed_actions)} records, {len(self.removed_objects)} objects, "
            f"{len(self.removed_tmp)} temp entries, {self.removed_plans} plan records: "
            f"{_human(self.bytes_before)} -> "
            f"{_human(self.bytes_after)} ({self.protected_objects} objects protected by kept "
            "manifests)"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: A temp entry of a live local writer is kept at least this long whatever the grace (its age
#: is that of its newest file: a writer streaming chunks keeps it young).
LIVE_WRITER_MIN_AGE_S = 3600.0


def _tmp_abandoned(store: Store, name: str, mtime: float, now: float, grace: float) -> bool:
    """On a local store an entry whose writer (the pid in its name) is dead is taken at once;
    one whose writer is alive only once idle for the grace and at least an hour, so
    ``gc(tmp_grace_s=0)`` beside running stages never takes their work in progress. Elsewhere
    the writer may be on another machine: only age counts."""
    age = now - mtime
    pid_text = name.split("-", 1)[0]
    if store.is_local and pid_text.isdigit():
        return not _pid_alive(int(pid_text)) or age > max(grace, LIVE_WRITER_MIN_AGE_S)
    return age > grace


def kept_manifest_objects(store: Store, keep: int | Iterable[str] | None) -> set[str]:
    """Objects referenced by the kept manifests (newest ``keep``, or those named)."""
    if keep is None:
        return set()
    names = store.manifest_names()
    if isinstance(keep, int):
        dated = []
        for name in names:
            with contextlib.suppress(OSError):
                dated.append((store.backend.mtime(f"manifests/{name}"), name))
        chosen = [n for _, n in sorted(dated, reverse=True)[: max(0, keep)]]
    else:
        wanted = {os.path.basename(str(k)).removesuffix(".json") for k in keep}
        chosen = [n for n in names if n.removesuffix(".json") in wanted]
        missing = wanted - {n.removesuffix(".json") for n in chosen}
        if missing:
            raise StoreError(
                f"gc: keep_manifests names {sorted(missing)} which are not in "
                f"{store.location}/manifests (available: {names[:5]}...)"
            )
    protected: set[str] = set()
    for name in chosen:
        try:
            doc = msgspec.json.decode(store.backend.read(f"manifests/{name}"))
        except (FileNotFoundError, msgspec.DecodeError):
            continue
        for node in doc.get("nodes", []):
            for out in (node.get("outputs") or {}).values():
                protected.update(out.get("objects") or [])
    return protected


def last_use_from_manifests(store: Store) -> dict[str, float]:
    """key hex -> when a run (or scan) that used it finished, from every manifest in the store.

    Hits are recorded in manifests, so the hot path of a cached run need not touch each record.
    """
    last: dict[str, float] = {}
    for name in store.manifest_names():
        try:
            doc = msgspec.json.decode(store.backend.read(f"manifests/{name}"))
        except (FileNotFoundError, msgspec.DecodeError):
            continue
        when = doc.get("finished") or doc.get("started") or 0.0
        for node in doc.get("nodes", []):
            key = node.get("key")
            if key:
                h = hex_of(key)
                if when > last.get(h, 0.0):
                    last[h] = when
    return last


class _Collector:
    """One gc pass: inventory, then the decisions (tmp, records, orphans, plans), then apply."""

    def __init__(self, store: Store, dry_run: bool, tmp_grace_s: float) -> None:
        self.store, self.now, self.grace = store, time.time(), tmp_grace_s
        self.report = GcReport(dry_run=dry_run)
        backend = store.backend
        self.tmp = _sizes_by_entry(store, "tmp", 1)
        for name in backend.listdir("tmp"):
            if name not in self.tmp:
                with contextlib.suppress(OSError):
                    self.tmp[name] = (0, backend.mtime(f"tmp/{name}"))
        self.objects = _sizes_by_entry(store, "objects", 2)
        self.actions = store.actions.entries()  # key hex -> (record bytes, last write or touch)
        manifests = _sizes_by_entry(store, "manifests", 1)
        sizes = (*self.tmp.values(), *self.objects.values(), *self.actions.values())
        self.total = sum(b for b, _ in (*sizes, *manifests.values()))
        self.report.bytes_before = self.total
        self.protected: set[str] = set()
        self.refs: dict[str, set[str]] = {}
        self.refcount: dict[str, int] = {}

    def sweep_tmp(self) -> None:
        for name, (size, mtime) in self.tmp.items():
            if _tmp_abandoned(self.store, name, mtime, self.now, self.grace):
                self.report.removed_tmp.append(name)
                self.total -= size

    def count_references(self) -> None:
        for h in self.actions:
            data = self.store.actions.raw(h)
            try:
                digests = decode_record(data).object_digests if data is not None else set()
            except (msgspec.DecodeError, msgspec.ValidationError):
                digests = set()
            self.refs[h] = digests
            for d in digests:
                self.refcount[d] = self.refcount.get(d, 0) + 1

    def drop_object(self, d: str) -> None:
        h = hex_of(d)
        if h not in self.objects or d in self.protected:
            return
        self.total -= self.objects.pop(h)[0]
        self.report.removed_objects.append(d)

    def evict_records(self, max_bytes: int | None, older_than: float | None) -> None:
        used = last_use_from_manifests(self.store)
        recency = {h: max(mtime, used.get(h, 0.0)) for h, (_size, mtime) in self.actions.items()}
        for h, (size, _mtime) in sorted(self.actions.items(), key=lambda item: recency[item[0]]):
            too_old = older_than is not None and self.now - recency[h] > older_than
            too_big = max_bytes is not None and self.total > max_bytes
            if not (too_old or too_big):
                if older_than is None:
                    break  # LRU order: every later record is newer and the store already fits
                continue
            self.total -= size
            self.report.removed_actions.append(DIGEST_PREFIX + h)
            for d in self.refs[h]:
                self.refcount[d] -= 1
                if self.refcount[d] == 0:
                    self.drop_object(d)

    def sweep_orphans(self) -> None:
        """Objects no record references (a writer died between object and record), once older
        than the grace period."""
        for h, (_size, mtime) in list(self.objects.items()):
            d = DIGEST_PREFIX + h
            if self.refcount.get(d, 0) == 0 and self.now - mtime > self.grace:
                self.drop_object(d)

    def settle_plans(self, max_bytes: int | None) -> bool:
        """Plan records only speed up re-runs: they go whenever gc removes anything, or to fit."""
        report = self.report
        plans, plan_bytes = self.store.actions.plan_stats()
        drop = plans > 0 and bool(
            report.removed_actions
            or report.removed_objects
            or (max_bytes is not None and self.total + plan_bytes > max_bytes)
        )
        if drop:
            report.removed_plans = plans
        else:
            self.total += plan_bytes
        report.bytes_before += plan_bytes
        return drop

    def apply(self, drop_plans: bool) -> None:
        """Records first (in one transaction on SQLite), then the objects only they referenced:
        a reader never finds a record whose objects are already gone because of this gc."""
        store, report = self.store, self.report
        for name in report.removed_tmp:
            store.backend.remove(f"tmp/{name}")
        if drop_plans:
            store.drop_plans()
        if report.removed_actions:
            store.actions.delete(report.removed_actions)
        for d in report.removed_objects:
            store.backend.unpublish(store.object_rel(d))


def gc(
    store: Store,
    *,
    max_bytes: int | None = None,
    older_than: float | None = None,
    keep_manifests: int | Iterable[str] | None = 10,
    dry_run: bool = False,
    tmp_grace_s: float = 3600.0,
) -> GcReport:
    pass_ = _Collector(store, dry_run, tmp_grace_s)
    pass_.sweep_tmp()
    pass_.protected = kept_manifest_objects(store, keep_manifests)
    objects = {DIGEST_PREFIX + h for h in pass_.objects}
    pass_.report.protected_objects = len(pass_.protected & objects)
    pass_.count_references()
    pass_.evict_records(max_bytes, older_than)
    pass_.sweep_orphans()
    drop_plans = pass_.settle_plans(max_bytes)
    if not dry_run:
        pass_.apply(drop_plans)
    report = pass_.report
    report.bytes_after = pass_.total
    report.freed_bytes = report.bytes_before - pass_.total
    return report
