"""Store maintenance: verify (and quarantine), stats, gc.

- :func:`verify` re-hashes every chunk of every object and re-derives each object's value digest,
  decodes every record and checks the objects it references. Bad objects are moved to
  ``quarantine/``; bad records (undecodable, or referencing missing/bad objects) are deleted, so
  the next run recomputes them.
- :func:`gc` removes abandoned temp entries (writer dead, or older than a grace period), then
  evicts records least-recently-used first (a record's last use is the newest run manifest that
  lists its key, or its write time; runs without a manifest bump it with
  ``ActionCache.touch``) with the objects that only they reference, until the store fits
  ``max_bytes`` and no record is older than ``older_than``; objects referenced by kept
  manifests are never deleted.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from ..core.array_rules import array_digest_from_parts, bytes_digest_from_hash
from ..core.digest_registry import hash_array_bytes
from ..core.framing import DIGEST_PREFIX
from ..core.hashing import digest
from ..core.records import decode_record
from .arrays import ArrayReader, Source, array_digest
from .errors import CorruptObjectError, MissingObjectError, StoreError

if TYPE_CHECKING:
    from .store import Store


def iter_objects(store: Store) -> Iterator[str]:
    """Digests of all visible objects."""
    for shard in store.backend.listdir("objects"):
        for name in store.backend.listdir(f"objects/{shard}"):
            if store.has_object(name):
                yield DIGEST_PREFIX + name


def iter_action_keys(store: Store) -> Iterator[str]:
    """Keys of all records, whatever the store's actions layout (SQLite or files)."""
    return iter(store.actions.list_keys())


# -- verify --------------------------------------------------------------------------------------


def check_object(store: Store, d: str) -> str | None:
    """None when object ``d`` is intact, else what is wrong with it."""
    from .codecs import read_array

    source = Source(store.backend, store.object_rel(d), d)
    try:
        meta = source.meta()
        physflow = meta["attributes"]["physflow"]
        if physflow.get("digest") != d:
            return f"metadata names digest {physflow.get('digest')!r}, not {d}"
        codec = physflow.get("codec")
        if meta.get("node_type") == "group":
            from .codecs import codec_named

            value = codec_named(codec).decode(store, ["o", codec, d])
            actual = digest(value)
        else:
            reader = ArrayReader(source, "", meta)
            single_raw = (
                reader.layout.nchunks == 1
                and reader.layout.chunks == reader.shape  # no edge padding
                and not reader.compressed
            )
            if codec == "array" and single_raw and "numpy_dtype" not in physflow:
                # one raw chunk holds exactly the C-order bytes: its verified digest is the
                # value's data hash, no second pass needed
                problems = reader.verify()
                if problems:
                    return problems[0]
                (chunk_hash,) = reader.expected.values()
                actual = array_digest_from_parts(
                    reader.dtype, reader.shape, bytes.fromhex(chunk_hash)
                )
            elif codec == "array":
                array = read_array(reader)
                actual = digest(array) if "numpy_dtype" in physflow else array_digest(array)[0]
            elif codec in ("blob", "pickle"):
                data = reader.read_all().tobytes()
                actual = bytes_digest_from_hash(len(data), hash_array_bytes(data))
            else:
                return f"unknown codec {codec!r}"
        if actual != d:
            return f"content digest is {actual}"
    except (CorruptObjectError, MissingObjectError) as exc:
        return str(exc)
    except Exception as exc:  # anything unreadable is bad, whatever the reason
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class VerifyReport:
    """What :func:`verify` found. ``ok`` when nothing was wrong."""

    objects_checked: int = 0
    records_checked: int = 0
    bad_objects: dict[str, str] = field(default_factory=dict)
    bad_records: dict[str, str] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    records_deleted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad_objects and not self.bad_records

    def __str__(self) -> str:
        lines = [
            f"checked {self.objects_checked} objects and {self.records_checked} records: "
            + (
                "all good"
                if self.ok
                else f"{len(self.bad_objects)} bad objects, {len(self.bad_records)} bad records"
            )
        ]
        lines += [f"  object {d}: {why}" for d, why in self.bad_objects.items()]
        lines += [f"  record {k}: {why}" for k, why in self.bad_records.items()]
        if self.quarantined:
            lines.append(f"  quarantined {len(self.quarantined)} objects")
        if self.records_deleted:
            lines.append(f"  deleted {len(self.records_deleted)} records (recomputed on next run)")
        return "\n".join(lines)


def verify(store: Store, *, quarantine: bool = True) -> VerifyReport:
    report = VerifyReport()
    bad: set[str] = set()
    for d in list(iter_objects(store)):
        report.objects_checked += 1
        problem = check_object(store, d)
        if problem is not None:
            report.bad_objects[d] = problem
            bad.add(d)
            if quarantine:
                _move_to_quarantine(store, d)
                report.quarantined.append(d)
    for key in list(iter_action_keys(store)):
        report.records_checked += 1
        problem = None
        data = store.actions.raw(key)
        if data is None:
            continue  # removed concurrently
        try:
            record = decode_record(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            problem = f"undecodable record ({exc})"
        else:
            if record.key != key:
                problem = f"record is stored under {key} but says it is {record.key}"
            for d in sorted(record.object_digests):
                if d in bad:
                    problem = f"references corrupted object {d}"
                elif not store.has_object(d):
                    problem = f"references missing object {d}"
        if problem is not None:
            report.bad_records[key] = problem
            if quarantine:
                store.delete_action(key)
                report.records_deleted.append(key)
    if report.quarantined or report.records_deleted:
        store.drop_plans()  # repaired: the next run re-checks every record on its own
    return report


def _move_to_quarantine(store: Store, d: str) -> None:
    hex_ = d[len(DIGEST_PREFIX) :] if d.startswith(DIGEST_PREFIX) else d
    with contextlib.suppress(FileNotFoundError, OSError):
        store.backend.move(store.object_rel(d), f"quarantine/{hex_}-{uuid.uuid4().hex[:8]}")


def quarantine(store: Store, d: str) -> int:
    """Move object ``d`` aside and delete every record referencing it; returns records deleted."""
    _move_to_quarantine(store, d)
    deleted = 0
    for key in list(iter_action_keys(store)):
        data = store.actions.raw(key)
        if data is None:
            continue
        try:
            record = decode_record(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if d in record.object_digests:
            store.delete_action(key)
            deleted += 1
    store.drop_plans()
    return deleted


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


def _tmp_abandoned(store: Store, name: str, mtime: float, now: float, grace: float) -> bool:
    if now - mtime > grace:
        return True
    if not store.is_local:
        return False  # the writer may be on another machine: only age counts
    pid_text = name.split("-", 1)[0]
    return pid_text.isdigit() and not _pid_alive(int(pid_text))


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
                h = key[len(DIGEST_PREFIX) :] if key.startswith(DIGEST_PREFIX) else key
                if when > last.get(h, 0.0):
                    last[h] = when
    return last


def gc(
    store: Store,
    *,
    max_bytes: int | None = None,
    older_than: float | None = None,
    keep_manifests: int | Iterable[str] | None = 10,
    dry_run: bool = False,
    tmp_grace_s: float = 3600.0,
) -> GcReport:
    now = time.time()
    report = GcReport(dry_run=dry_run)
    backend = store.backend

    tmp = _sizes_by_entry(store, "tmp", 1)
    for name in backend.listdir("tmp"):
        tmp.setdefault(name, (0, 0.0))
    objects = _sizes_by_entry(store, "objects", 2)
    actions = store.actions.entries()  # key hex -> (record bytes, last write or touch)
    manifests = _sizes_by_entry(store, "manifests", 1)
    for name in list(tmp):
        if tmp[name][1] == 0.0:
            with contextlib.suppress(OSError):
                tmp[name] = (0, backend.mtime(f"tmp/{name}"))
    total = sum(
        b for b, _ in (*tmp.values(), *objects.values(), *actions.values(), *manifests.values())
    )
    report.bytes_before = total

    for name, (size, mtime) in tmp.items():
        if _tmp_abandoned(store, name, mtime, now, tmp_grace_s):
            report.removed_tmp.append(name)
            total -= size
            if not dry_run:
                backend.remove(f"tmp/{name}")

    protected = kept_manifest_objects(store, keep_manifests)
    report.protected_objects = len(protected & {DIGEST_PREFIX + h for h in objects})

    refs: dict[str, set[str]] = {}
    refcount: dict[str, int] = {}
    for h in actions:
        data = store.actions.raw(h)
        try:
            digests = decode_record(data).object_digests if data is not None else set()
        except (msgspec.DecodeError, msgspec.ValidationError):
            digests = set()
        refs[h] = digests
        for d in digests:
            refcount[d] = refcount.get(d, 0) + 1

    def drop_object(d: str) -> None:
        nonlocal total
        h = d[len(DIGEST_PREFIX) :]
        if h not in objects or d in protected:
            return
        total -= objects.pop(h)[0]
        report.removed_objects.append(d)

    used = last_use_from_manifests(store)
    recency = {h: max(mtime, used.get(h, 0.0)) for h, (_size, mtime) in actions.items()}
    for h, (size, _mtime) in sorted(actions.items(), key=lambda item: recency[item[0]]):
        too_old = older_than is not None and now - recency[h] > older_than
        too_big = max_bytes is not None and total > max_bytes
        if not (too_old or too_big):
            if older_than is None:
                break  # LRU order: every later record is newer and the store already fits
            continue
        total -= size
        report.removed_actions.append(DIGEST_PREFIX + h)
        for d in refs[h]:
            refcount[d] -= 1
            if refcount[d] == 0:
                drop_object(d)

    # objects no record references (a writer died between object and record): after the grace
    for h, (_size, mtime) in list(objects.items()):
        d = DIGEST_PREFIX + h
        if refcount.get(d, 0) == 0 and now - mtime > tmp_grace_s:
            drop_object(d)

    # Plan records only speed up re-runs: they go whenever gc removes anything, or to fit.
    plans, plan_bytes = store.actions.plan_stats()
    drop_plans = plans > 0 and bool(
        report.removed_actions
        or report.removed_objects
        or (max_bytes is not None and total + plan_bytes > max_bytes)
    )
    if drop_plans:
        report.removed_plans = plans
    else:
        total += plan_bytes
    report.bytes_before += plan_bytes

    if not dry_run:
        if drop_plans:
            store.drop_plans()
        # records first (in one transaction on SQLite), then the objects only they referenced:
        # a reader never finds a record whose objects are already gone because of this gc
        if report.removed_actions:
            store.actions.delete(report.removed_actions)
        for d in report.removed_objects:
            backend.unpublish(store.object_rel(d))

    report.bytes_after = total
    report.freed_bytes = report.bytes_before - total
    return report
