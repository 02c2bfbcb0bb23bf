"""The content-addressed store: ``objects/`` (values by digest) and ``actions/`` (key -> record).

Layout under the root (a local directory, or any fsspec URL)::

    store.json               the layout stamp: {"format": 1, "actions": "sqlite" | "files"}
    objects/ab/<digest>/     an immutable value: a zarr v3 array or group (``zarr.json`` + chunks)
    actions.sqlite           key -> msgpack ActionRecord (layout "sqlite": new local stores)
    actions/ab/<key>         msgpack ActionRecord, one file each (layout "files": fsspec URLs,
                             stores made by earlier versions, or ``Store(path, actions="files")``)
    manifests/<run id>.json  run manifests
    quarantine/              corrupted objects moved aside by verify()/quarantine()
    tmp/<pid>-<uuid>         writes in progress (published when complete; gc removes leftovers)

Rules that keep readers safe: an object is complete before it becomes visible (locally: written
in ``tmp/`` then renamed; on fsspec: its ``zarr.json`` is written last and marks it present); a
record is written only after every object it references; nothing visible is ever modified; every
chunk read is checked against its digest. See docs/store.md for the guarantees per backend.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.framing import hex_of
from ..core.names import is_hex_key
from ..core.records import ActionRecord, OutputEntry
from . import arrays
from .action_cache import ActionCache
from .backend import LocalBackend, Sink, tmp_name
from .errors import CorruptObjectError, MissingObjectError, StoreLocationError
from .inline import UnsupportedValueError
from .layout import LAYOUTS, check_local_dirs, open_sqlite_records, resolve_layout
from .record_store import FileRecords, RecordStore
from .remote import open_url_backend
from .values import get_value, put_array_object, put_value

DEFAULT_STORE_ENV = "PHYSFLOW_STORE"
DEFAULT_STORE_PATH = ".physflow"
MARKER = arrays.META
#: Top-level directories of a local store (each must be a real directory, never a link).
LOCAL_DIRS = ("objects", "actions", "manifests", "tmp", "quarantine", "plans", "datasets")


def default_store_path() -> str:
    return os.environ.get(DEFAULT_STORE_ENV) or DEFAULT_STORE_PATH


def is_url(location: Any) -> bool:
    return isinstance(location, str) and "://" in location


class Store:
    """A content-addressed store in a local directory or at an fsspec URL.

    ``allow_pickle`` lets :meth:`get_value` unpickle values that stages stored with
    ``@pf.stage(pickle=True)``; ``compress`` stores arrays zstd-compressed by default (a stage's
    own ``compress=`` wins). ``actions`` picks where a new local store keeps its action records:
    ``"sqlite"`` (default, one database file) or ``"files"`` (one file per record: for stores on
    network filesystems such as NFS, where SQLite locking is unreliable). The choice is stamped
    in ``store.json`` when the store is created; see docs/store.md.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        allow_pickle: bool = False,
        compress: bool = False,
        storage_options: dict[str, Any] | None = None,
        actions: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_bytes: int | None = None,
        claims: float | None = None,
    ) -> None:
        location = path if path is not None else default_store_path()
        if not str(location).strip():
            raise StoreLocationError(
                "the store path is empty; give a directory (e.g. --store ./.physflow) or unset "
                "it to use $PHYSFLOW_STORE or ./.physflow"
            )
        if actions is not None and actions not in LAYOUTS:
            raise ValueError(
                f"Store(actions={actions!r}): expected one of {LAYOUTS} (or None for the "
                "store's own layout)"
            )
        self.allow_pickle = allow_pickle
        self.compress = compress
        self.storage_options = storage_options
        self.backend: Any
        self.cache_dir, self.cache_bytes = cache_dir, cache_bytes  # issue 19: tiered reads
        self.claims_ttl, self._claims = claims, None
        if is_url(location):
            self.backend = open_url_backend(str(location), storage_options, cache_dir, cache_bytes)
            self.root: Any = str(location).rstrip("/")
            self._local = False
            base = self.backend.prefix
            self.objects_dir: Any = f"{base}/objects"
            self.actions_dir: Any = f"{base}/actions"
            self.manifests_dir: Any = f"{base}/manifests"
            self.tmp_dir: Any = f"{base}/tmp"
            self.quarantine_dir: Any = f"{base}/quarantine"
        else:
            self.root = Path(location).absolute()
            self.backend = LocalBackend(self.root, cache_dir)
            self._local = True
            self.objects_dir = self.root / "objects"
            self.actions_dir = self.root / "actions"
            self.manifests_dir = self.root / "manifests"
            self.tmp_dir = self.root / "tmp"
            self.quarantine_dir = self.root / "quarantine"
        self.actions_layout = resolve_layout(self, actions)
        if self._local:
            check_local_dirs(str(self.root), LOCAL_DIRS)
        for sub in ("objects", "manifests", "tmp"):
            self.backend.makedirs(sub)
        self.records = self._open_records()
        self.actions = ActionCache(self.records, self.has_objects)
        # a plain string prefix: the warm cache-hit path is a string join and one syscall
        self._objects_prefix = self.backend.abspath("objects/")

    def _open_records(self) -> RecordStore:
        """The record store of this store's layout, chosen once here."""
        if self.actions_layout == "files":
            return FileRecords(self.backend)
        return open_sqlite_records(self)

    @property
    def location(self) -> str:
        """What a worker needs to open the same store."""
        return str(self.root)

    @property
    def is_local(self) -> bool:
        return self._local

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    def __reduce__(self) -> tuple:
        options = {
            "allow_pickle": self.allow_pickle,
            "compress": self.compress,
            "storage_options": self.storage_options,
            "actions": self.actions_layout,
            "cache_dir": self.cache_dir,
            "cache_bytes": self.cache_bytes,
            "claims": self.claims_ttl,
        }
        return (_reopen, (self.location, options))

    @property
    def claims(self) -> Any:
        """The store's claims (``Store(..., claims=ttl)``), or None: with claims, of several
        workers that reach the same missing key at once one computes and the others wait, then
        hit (see :mod:`.claims`)."""
        if self.claims_ttl is None:
            return None
        if self._claims is None:
            from .claims import Claims

            self._claims = Claims(self)
        return self._claims

    # -- paths ------------------------------------------------------------------------------------

    @staticmethod
    def object_rel(d: str) -> str:
        """``objects/ab/<hex>``; a name that is not a digest (damaged or forged data, such as
        ``b3:../x``) is a :class:`CorruptObjectError`, never a path."""
        h = hex_of(d)
        if not is_hex_key(h):
            raise CorruptObjectError(f"{d!r} is not an object digest (damaged or forged data)")
        return f"objects/{h[:2]}/{h}"

    @staticmethod
    def action_rel(key: str) -> str:
        h = hex_of(key)
        if not is_hex_key(h):
            raise CorruptObjectError(f"{key!r} is not a cache key (damaged or forged data)")
        return f"actions/{h[:2]}/{h}"

    def object_path(self, d: str) -> Any:
        """Where object ``d`` lives (a Path for local stores, a filesystem path otherwise)."""
        path = self.backend.abspath(self.object_rel(d))
        return Path(path) if self._local else path

    def action_path(self, key: str) -> Any:
        path = self.backend.abspath(self.action_rel(key))
        return Path(path) if self._local else path

    def new_tmp(self) -> Path:
        """A fresh local temp directory (local stores only)."""
        path = self.root / "tmp" / tmp_name()
        path.mkdir()
        return path

    # -- actions (the action cache: see action_cache.py) -------------------------------------------

    def get_action(self, key: str) -> ActionRecord | None:
        """The intact record filed under ``key``, or None (see :meth:`ActionCache.get`)."""
        return self.actions.get(key)

    def put_action(self, record: ActionRecord) -> None:
        """Write a record (after its objects exist); visible once this returns (or, inside
        :meth:`deferred_action_writes`, within one batch window)."""
        self.actions.record(record)

    def delete_action(self, key: str) -> None:
        """Delete one record; plan records go too, so its node really runs again."""
        self.actions.delete([key])

    def drop_plans(self) -> None:
        """Delete every plan record (they only speed up re-runs)."""
        self.actions.drop_plans()

    def deferred_action_writes(self) -> contextlib.AbstractContextManager[None]:
        """Batch this process's record writes into few commits (SQLite layout)."""
        return self.actions.batch()

    # -- objects ----------------------------------------------------------------------------------

    def has_object(self, d: str) -> bool:
        h = hex_of(d)
        if not is_hex_key(h):
            raise CorruptObjectError(f"{d!r} is not an object digest (damaged or forged data)")
        if self._local:
            return os.path.exists(f"{self._objects_prefix}{h[:2]}/{h}")
        return self.backend.exists(f"objects/{h[:2]}/{h}/{MARKER}")

    def has_objects(self, digests: Iterable[str]) -> bool:
        return all(self.has_object(d) for d in digests)

    def write_object(self, write: Callable[[Sink], str]) -> str:
        """Run ``write(sink)`` in a fresh temp directory; it returns the object digest, then
        the directory is published as that object (unless an identical one already exists)."""
        rel, sink = self.backend.new_sink()
        try:
            d = write(sink)
            if self.has_object(d):
                self.backend.discard(rel)
            else:
                self.backend.publish(rel, self.object_rel(d), MARKER)
        except BaseException:
            self.backend.discard(rel)
            raise
        return d

    def put_array_object(
        self,
        array: np.ndarray,
        compress: bool = False,
        *,
        codec: str = "array",
        digest_fn: Callable[[bytes], str] | None = None,
        memo: dict[int, bytes] | None = None,
    ) -> str:
        """Store a numpy array as a zarr v3 object; returns its digest (= ``pf.digest(array)``
        for the array codec). See :func:`.values.put_array_object`."""
        return put_array_object(self, array, compress, codec, digest_fn, memo)

    def object_source(self, d: str) -> arrays.Source:
        """Read access to object ``d``; :class:`MissingObjectError` when it is not there (the
        records that use it are dropped, so the next run recomputes it)."""
        if not self.has_object(d):
            dropped = self._heal(d)
            raise MissingObjectError(
                f"object {d} is not in the store at {self.location} (removed by gc or "
                f"quarantined?){dropped}",
                digest=d,
            )
        return arrays.Source(self.backend, self.object_rel(d), d, on_corrupt=self.quarantine)

    def _heal(self, d: str) -> str:
        try:
            self.quarantine(d)
        except Exception:  # best effort: the caller's error is what matters
            return " Re-run the pipeline to recompute it."
        return " The records that used it were dropped: the next run recomputes it."

    def array_reader(self, d: str) -> arrays.ArrayReader:
        return arrays.ArrayReader(self.object_source(d))

    # -- values (see .values) ------------------------------------------------------------------

    def put_value(
        self, value: Any, *, allow_pickle: bool = False, compress: bool | None = None
    ) -> OutputEntry:
        """Store a value (large leaves as objects) and describe it as an :class:`OutputEntry`.

        Types without a codec raise :class:`UnsupportedValueError` unless ``allow_pickle``.
        """
        return put_value(self, value, allow_pickle=allow_pickle, compress=compress)

    def get_value(self, entry: OutputEntry) -> Any:
        """Load a stored value, verifying every chunk it reads (see :func:`.values.get_value`)."""
        return get_value(self, entry)

    # -- manifests --------------------------------------------------------------------------------

    def manifest_path(self, run_id: str) -> Any:
        path = self.backend.abspath(f"manifests/{run_id}.json")
        return Path(path) if self._local else path

    def write_bytes_atomic(self, final: Any, data: bytes) -> None:
        if not self._local:
            rel = str(final)[len(self.backend.prefix) + 1 :]
            self.backend.write_atomic(rel, data)
            return
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_dir / tmp_name(".part")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def manifest_names(self) -> list[str]:
        return sorted(n for n in self.backend.listdir("manifests") if n.endswith(".json"))

    # -- maintenance (see .verify and .gc) -------------------------------------------------------

    def quarantine(self, d: str) -> int:
        """Move object ``d`` to ``quarantine/`` and delete the records that reference it (so the
        next run recomputes them). Returns the number of records deleted."""
        from .verify import quarantine

        return quarantine(self, d)

    def verify(self, *, quarantine: bool = True) -> Any:
        """Check every object's chunks and every record; quarantine bad entries. See
        :class:`~physflow.artifacts.verify.VerifyReport`."""
        from .verify import verify

        return verify(self, quarantine=quarantine)

    def stats(self) -> Any:
        """Entries and bytes, in total and by kind (objects, actions, manifests, tmp)."""
        from .gc import stats

        return stats(self)

    def gc(
        self,
        *,
        max_bytes: int | None = None,
        older_than: float | None = None,
        keep_manifests: int | Iterable[str] | None = 10,
        dry_run: bool = False,
        tmp_grace_s: float = 3600.0,
    ) -> Any:
        """Evict least-recently-used records (and objects only they reference), never what a
        kept manifest references; remove abandoned temp files. See docs/store.md."""
        from .gc import gc

        return gc(
            self,
            max_bytes=max_bytes,
            older_than=older_than,
            keep_manifests=keep_manifests,
            dry_run=dry_run,
            tmp_grace_s=tmp_grace_s,
        )


def _reopen(location: str, options: dict[str, Any]) -> Store:
    """The same store in another process (workers get the location and every option)."""
    return Store(location, **options)


def open_store(store: Store | str | os.PathLike[str] | None) -> Store:
    return store if isinstance(store, Store) else Store(store)


__all__ = [
    "MissingObjectError",
    "Store",
    "UnsupportedValueError",
    "open_store",
]
