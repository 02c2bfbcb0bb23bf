"""Store maintenance, part 1: verify (and quarantine).

:func:`verify` re-hashes every chunk of every object and re-derives each object's value digest,
decodes every record and checks the objects it references. Bad objects are moved to
``quarantine/``; bad records (undecodable, or referencing missing/bad objects) are deleted, so
the next run recomputes them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from ..core.array_rules import array_digest_from_parts, bytes_digest_from_hash
from ..core.digest_registry import hash_array_bytes
from ..core.framing import DIGEST_PREFIX, hex_of
from ..core.hashing import digest
from ..core.names import is_hex_key
from ..core.records import decode_record
from .arrays import ArrayReader, Source, array_digest
from .errors import CorruptObjectError, MissingObjectError

if TYPE_CHECKING:
    from .store import Store


def iter_objects(store: Store) -> Iterator[str]:
    """Digests of all visible objects (names that are not digests, and links, are skipped:
    they are not store entries)."""
    for shard in store.backend.listdir("objects"):
        if store.is_local and os.path.islink(store.backend.abspath(f"objects/{shard}")):
            continue
        for name in store.backend.listdir(f"objects/{shard}"):
            rel = f"objects/{shard}/{name}"
            if not is_hex_key(name) or (
                store.is_local and os.path.islink(store.backend.abspath(rel))
            ):
                continue
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
    hex_ = hex_of(d)
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
