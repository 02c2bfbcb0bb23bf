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
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..core.framing import hex_of, merkle
from ..core.hashing import UnhashableValueError, digest_with_memo
from ..core.records import ActionRecord, OutputEntry
from . import arrays
from .action_cache import ActionCache
from .arrays import c_order as _c_order
from .backend import FsspecBackend, LocalBackend, Sink, tmp_name
from .codecs import WriteOptions, codec_named, find_codec, pickle_value, pickled_digest
from .errors import MissingObjectError, PickleNotAllowedError, StoreError
from .inline import UnsupportedValueError, from_tree, to_tree, tree_objects
from .record_store import FileRecords, RecordStore
from .records_sqlite import DB_NAME, SqliteRecords, create_db

DEFAULT_STORE_ENV = "PHYSFLOW_STORE"
DEFAULT_STORE_PATH = ".physflow"
#: In-memory arrays below this size are hashed before writing (so an existing object is not
#: rewritten); larger ones are hashed in a thread while they are written.
HASH_FIRST_BYTES = 8 << 20
MARKER = arrays.META
STAMP_NAME = "store.json"
STORE_FORMAT = 1
LAYOUTS = ("sqlite", "files")


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
    ) -> None:
        location = path if path is not None else default_store_path()
        if actions is not None and actions not in LAYOUTS:
            raise ValueError(
                f"Store(actions={actions!r}): expected one of {LAYOUTS} (or None for the "
                "store's own layout)"
            )
        self.allow_pickle = allow_pickle
        self.compress = compress
        self.storage_options = storage_options
        self.backend: LocalBackend | FsspecBackend
        if is_url(location):
            self.backend = FsspecBackend(str(location), storage_options)
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
            self.backend = LocalBackend(self.root)
            self._local = True
            self.objects_dir = self.root / "objects"
            self.actions_dir = self.root / "actions"
            self.manifests_dir = self.root / "manifests"
            self.tmp_dir = self.root / "tmp"
            self.quarantine_dir = self.root / "quarantine"
        self.actions_layout = self._resolve_layout(actions)
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
        db_path = f"{self.root}/{DB_NAME}"
        if not os.path.exists(db_path):
            create_db(db_path, f"{self.tmp_dir}/{tmp_name('.sqlite')}")
        return SqliteRecords(db_path)

    def _resolve_layout(self, wanted: str | None) -> str:
        """The actions layout stamped in ``store.json``; stamps it when the store has none.

        New local store: ``wanted`` or "sqlite". Local store made before stamps existed (it has
        ``objects/`` or ``actions/`` but no stamp): "files", so it keeps working. fsspec URLs:
        always "files". The stamp is published with a no-replace link, so processes that open a
        new store at the same time agree on one layout.
        """
        try:
            raw = self.backend.read(STAMP_NAME)
        except FileNotFoundError:
            raw = None
        if raw is not None:
            try:
                stamp = msgspec.json.decode(raw)
                found = stamp["actions"]
                if found not in LAYOUTS:
                    raise ValueError(found)
            except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
                raise StoreError(
                    f"{self.location}/{STAMP_NAME} is not a valid store stamp ({exc!r}); it "
                    'should read {"format": 1, "actions": "sqlite"} or "files": restore it'
                ) from None
            return self._check_layout(found, wanted)
        if not self._local:
            layout = "files"
        elif os.path.exists(f"{self.root}/{DB_NAME}"):
            layout = "sqlite"
        elif os.path.isdir(self.objects_dir) or os.path.isdir(self.actions_dir):
            layout = "files"  # made by an earlier version: its records are files
        else:
            layout = wanted or "sqlite"
        return self._check_layout(self._write_stamp(layout), wanted)

    def _check_layout(self, found: str, wanted: str | None) -> str:
        if not self._local and wanted == "sqlite":
            raise StoreError(
                f"Store({self.location!r}, actions='sqlite'): SQLite records need a local "
                "directory; fsspec URLs keep one file per record (omit actions=)"
            )
        if not self._local and found == "sqlite":
            raise StoreError(
                f"the store at {self.location} keeps its action records in SQLite "
                f"({STAMP_NAME} says actions={found!r}); open it by its local path, not a URL"
            )
        if wanted is not None and wanted != found:
            raise StoreError(
                f"Store({self.location!r}, actions={wanted!r}): this store keeps its action "
                f"records as {found!r} ({self.location}/{STAMP_NAME}); open it without "
                f"actions= (or with actions={found!r}), or use a new store directory for "
                f"actions={wanted!r}"
            )
        return found

    def _write_stamp(self, layout: str) -> str:
        """Publish the stamp unless one appeared meanwhile; returns the stamp that won."""
        data = msgspec.json.encode({"format": STORE_FORMAT, "actions": layout})
        if not self._local:
            self.backend.makedirs("tmp")
            self.backend.write_atomic(STAMP_NAME, data)
            return layout
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.tmp_dir, exist_ok=True)
        tmp = f"{self.tmp_dir}/{tmp_name('.stamp')}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.link(tmp, f"{self.root}/{STAMP_NAME}")
        except FileExistsError:
            return msgspec.json.decode(self.backend.read(STAMP_NAME))["actions"]
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return layout

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
        return (
            _reopen,
            (
                self.location,
                self.allow_pickle,
                self.compress,
                self.storage_options,
                self.actions_layout,
            ),
        )

    # -- paths ------------------------------------------------------------------------------------

    @staticmethod
    def object_rel(d: str) -> str:
        h = hex_of(d)
        return f"objects/{h[:2]}/{h}"

    @staticmethod
    def action_rel(key: str) -> str:
        h = hex_of(key)
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
        for the array codec)."""
        plain = codec == "array" and digest_fn is None
        if self._local and plain and not compress and arrays.zarr_supports(array.dtype):
            return self._put_native_local(array, memo)
        from .codecs import write_array

        def write(sink: Sink) -> str:
            kwargs: dict[str, Any] = {"codec": codec}
            if digest_fn is not None:
                kwargs["digest_fn"] = digest_fn
            d, _meta = write_array(self, sink, "", array, compress, **kwargs)
            return d

        return self.write_object(write)

    def _put_native_local(self, array: np.ndarray, memo: dict[int, bytes] | None) -> str:
        original = array
        array = _c_order(array)
        digest = data_hash = None
        if array.nbytes < HASH_FIRST_BYTES:
            digest, data_hash = arrays.array_digest(array)
            if self.has_object(digest):
                if memo is not None:
                    memo[id(original)] = data_hash
                return digest
        tmp = self.new_tmp()
        try:
            digest, data_hash = arrays.write_array_dir(tmp, array, digest, data_hash)
            self.backend.publish(f"tmp/{tmp.name}", self.object_rel(digest), MARKER)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if memo is not None:
            memo[id(original)] = data_hash
        return digest

    def object_source(self, d: str) -> arrays.Source:
        """Read access to object ``d``; :class:`MissingObjectError` when it is not there."""
        if not self.has_object(d):
            raise MissingObjectError(
                f"object {d} is not in the store at {self.location}; it may have been removed "
                "by gc or quarantined. Re-run the pipeline to recompute it."
            )
        return arrays.Source(self.backend, self.object_rel(d), d)

    def array_reader(self, d: str) -> arrays.ArrayReader:
        return arrays.ArrayReader(self.object_source(d))

    # -- values -----------------------------------------------------------------------------------

    def put_value(
        self, value: Any, *, allow_pickle: bool = False, compress: bool | None = None
    ) -> OutputEntry:
        """Store a value (large leaves as objects) and describe it as an :class:`OutputEntry`.

        Types without a codec raise :class:`UnsupportedValueError` unless ``allow_pickle``.
        """
        opts = WriteOptions(
            compress=self.compress if compress is None else compress, allow_pickle=allow_pickle
        )
        memo: dict[int, bytes] = {}  # id(array) -> blake3 of its bytes, hashed while writing
        # Keeps every leaf alive until the digest is taken: a temporary (a tensor's host array)
        # freed early would let another array reuse its id and be digested by its hash.
        alive: list[Any] = []

        def store_leaf(leaf: Any) -> list | None:
            alive.append(leaf)
            codec = find_codec(leaf)
            if codec is None:
                if allow_pickle:
                    return pickle_value(self, leaf, opts)
                return None
            if codec.name == "array":
                if leaf.dtype.hasobject:
                    if allow_pickle:
                        return pickle_value(self, leaf, opts)
                    raise UnsupportedValueError(
                        "numpy arrays of dtype object have no codec (their bytes are pointers); "
                        "use a numeric, string or structured dtype, or declare the stage with "
                        "@pf.stage(pickle=True)"
                    )
                return ["o", "array", self.put_array_object(leaf, opts.compress, memo=memo)]
            return codec.encode(self, leaf, opts, store_leaf)

        tree = to_tree(value, store_leaf)
        if tree[0] == "o" and tree[1] == "pickle":
            d = pickled_digest(tree)
        else:
            try:
                d = digest_with_memo(value, memo)
            except UnhashableValueError:
                if not opts.unsafe:
                    raise
                # a container holding pickled leaves: digest its stored tree instead
                d = merkle("tree", msgspec.msgpack.encode(tree))
        shape = dtype = None
        nbytes = 0
        if isinstance(value, np.ndarray):
            dtype, shape, nbytes = value.dtype.str, tuple(value.shape), int(value.nbytes)
        elif isinstance(value, bytes):
            nbytes = len(value)
        elif tree[0] == "x" and hasattr(value, "shape"):
            shape = tuple(int(n) for n in value.shape)
            dtype = str(tree[2].get("dtype"))
        return OutputEntry(
            digest=d,
            tree=tree,
            objects=tuple(tree_objects(tree)),
            type_name=f"{type(value).__module__}.{type(value).__qualname__}",
            dtype=dtype,
            shape=shape,
            nbytes=nbytes,
            unsafe=opts.unsafe,
        )

    def get_value(self, entry: OutputEntry) -> Any:
        """Load a stored value, verifying every chunk it reads.

        Arrays come back as numpy arrays (memory-mapped when stored uncompressed in one local
        chunk, otherwise read chunk by chunk); xarray values come back backed by verified dask
        arrays. Corrupted objects raise :class:`CorruptObjectError` (never a wrong value).
        """
        if entry.unsafe and not self.allow_pickle:
            raise PickleNotAllowedError(
                f"value {entry.digest} was stored with pickle (unsafe: unpickling runs code); "
                "open the store with Store(path, allow_pickle=True) if you trust whoever wrote it"
            )
        return from_tree(entry.tree, self._load_leaf)

    def _load_leaf(self, ref: list) -> Any:
        return codec_named(ref[1]).decode(self, ref)

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

    # -- maintenance (see .maintenance) -----------------------------------------------------------

    def quarantine(self, d: str) -> int:
        """Move object ``d`` to ``quarantine/`` and delete the records that reference it (so the
        next run recomputes them). Returns the number of records deleted."""
        from .maintenance import quarantine

        return quarantine(self, d)

    def verify(self, *, quarantine: bool = True) -> Any:
        """Check every object's chunks and every record; quarantine bad entries. See
        :class:`~physflow.artifacts.maintenance.VerifyReport`."""
        from .maintenance import verify

        return verify(self, quarantine=quarantine)

    def stats(self) -> Any:
        """Entries and bytes, in total and by kind (objects, actions, manifests, tmp)."""
        from .maintenance import stats

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
        from .maintenance import gc

        return gc(
            self,
            max_bytes=max_bytes,
            older_than=older_than,
            keep_manifests=keep_manifests,
            dry_run=dry_run,
            tmp_grace_s=tmp_grace_s,
        )


def _reopen(
    location: str,
    allow_pickle: bool,
    compress: bool,
    storage_options: dict[str, Any] | None,
    actions: str | None = None,
) -> Store:
    return Store(
        location,
        allow_pickle=allow_pickle,
        compress=compress,
        storage_options=storage_options,
        actions=actions,
    )


def open_store(store: Store | str | os.PathLike[str] | None) -> Store:
    return store if isinstance(store, Store) else Store(store)


__all__ = [
    "MissingObjectError",
    "Store",
    "UnsupportedValueError",
    "open_store",
]
