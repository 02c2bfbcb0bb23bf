"""The content-addressed store: ``objects/`` (values by digest) and ``actions/`` (key -> record).

Layout under the root::

    objects/ab/<digest>/     an immutable value (zarr v3 array dir, or a blob dir)
    actions/ab/<key>         msgpack ActionRecord
    manifests/<run id>.json  run manifests
    tmp/                     writes in progress (renamed into place when complete)

Rules that keep readers safe: an object is complete before it becomes visible (written in
``tmp/`` then renamed); a record is written only after every object it references; nothing
visible is ever modified.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..pipeline.hashing import DIGEST_PREFIX, digest_with_memo, hash_array_bytes
from . import arrays
from .errors import CorruptObjectError, MissingObjectError, StoreError
from .inline import UnsupportedValueError, from_tree, to_tree, tree_objects
from .records import RECORD_DECODER, RECORD_ENCODER, ActionRecord, OutputEntry

DEFAULT_STORE_ENV = "PHYSFLOW_STORE"
DEFAULT_STORE_PATH = ".physflow"


def default_store_path() -> str:
    return os.environ.get(DEFAULT_STORE_ENV) or DEFAULT_STORE_PATH


def _hex(d: str) -> str:
    return d[len(DIGEST_PREFIX) :] if d.startswith(DIGEST_PREFIX) else d


class Store:
    """A local content-addressed store (see module docstring for the layout and guarantees)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, allow_pickle: bool = False,
                 compress: bool = False) -> None:
        self.root = Path(path if path is not None else default_store_path()).absolute()
        self.allow_pickle = allow_pickle
        self.compress = compress
        self.objects_dir = self.root / "objects"
        self.actions_dir = self.root / "actions"
        self.manifests_dir = self.root / "manifests"
        self.tmp_dir = self.root / "tmp"
        for d in (self.objects_dir, self.actions_dir, self.manifests_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        """What a worker needs to open the same store."""
        return str(self.root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def __reduce__(self) -> tuple:
        return (Store, (str(self.root),), {"allow_pickle": self.allow_pickle, "compress": self.compress})

    def __setstate__(self, state: dict) -> None:
        self.allow_pickle = state["allow_pickle"]
        self.compress = state["compress"]

    # -- paths ------------------------------------------------------------------------------------

    def object_path(self, d: str) -> Path:
        h = _hex(d)
        return self.objects_dir / h[:2] / h

    def action_path(self, key: str) -> Path:
        h = _hex(key)
        return self.actions_dir / h[:2] / h

    def new_tmp(self) -> Path:
        path = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def _publish(self, tmp: Path, final: Path) -> None:
        """Move a completed temp entry into place; a concurrent identical entry wins harmlessly."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)

    # -- actions ------------------------------------------------------------------------------------

    def get_action(self, key: str) -> ActionRecord | None:
        """The record for ``key``, or None. Unreadable records count as misses."""
        try:
            with open(self.action_path(key), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        try:
            return RECORD_DECODER.decode(data)
        except msgspec.DecodeError:
            return None

    def put_action(self, record: ActionRecord) -> None:
        """Write a record (after its objects exist) atomically."""
        final = self.action_path(record.key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.rec"
        with open(tmp, "wb") as fh:
            fh.write(RECORD_ENCODER.encode(record))
        os.replace(tmp, final)

    def touch_action(self, key: str) -> None:
        """Mark a record as used now (gc evicts least-recently-used records first)."""
        with contextlib.suppress(OSError):
            os.utime(self.action_path(key))

    # -- values -------------------------------------------------------------------------------------

    def put_value(self, value: Any, *, allow_pickle: bool = False,
                  compress: bool | None = None) -> OutputEntry:
        """Store a value (large leaves as objects) and describe it as an :class:`OutputEntry`."""
        memo: dict[int, bytes] = {}  # id(leaf) -> blake3 of its bytes, hashed while writing
        unsafe = False

        def store_leaf(leaf: Any) -> list | None:
            nonlocal unsafe
            if isinstance(leaf, np.ndarray):
                return self._put_array(leaf, memo)
            if isinstance(leaf, bytes):
                return self._put_blob(leaf, memo)
            if allow_pickle:
                unsafe = True
                return self._put_pickle(leaf, memo)
            return None

        tree = to_tree(value, store_leaf)
        d = digest_with_memo(value, memo)
        shape = dtype = None
        nbytes = 0
        if isinstance(value, np.ndarray):
            dtype, shape, nbytes = value.dtype.str, tuple(value.shape), int(value.nbytes)
        elif isinstance(value, bytes):
            nbytes = len(value)
        return OutputEntry(
            digest=d,
            tree=tree,
            objects=tuple(tree_objects(tree)),
            type_name=f"{type(value).__module__}.{type(value).__qualname__}",
            dtype=dtype,
            shape=shape,
            nbytes=nbytes,
            unsafe=unsafe,
        )

    def _put_array(self, array: np.ndarray, memo: dict[int, bytes]) -> list:
        if not arrays.zarr_supports(array.dtype):
            raise UnsupportedValueError(
                f"arrays of dtype {array.dtype} larger than the inline limit cannot be stored "
                "yet; use a numeric or bool dtype"
            )
        d, data_hash = arrays.array_digest(array)
        memo[id(array)] = data_hash
        final = self.object_path(d)
        if not final.exists():
            tmp = self.new_tmp()
            try:
                arrays.write_array_dir(tmp, array, d, data_hash)
                self._publish(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return ["o", "array", d]

    def _put_blob(self, data: bytes, memo: dict[int, bytes]) -> list:
        data_hash = hash_array_bytes(data)
        memo[id(data)] = data_hash
        d = digest_with_memo(data, memo)
        final = self.object_path(d)
        if not final.exists():
            tmp = self.new_tmp()
            try:
                (tmp / "blob").write_bytes(data)
                meta = {"codec": "blob", "digest": d, "chunks": {"blob": data_hash.hex()}}
                (tmp / "object.json").write_text(json.dumps(meta))
                self._publish(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return ["o", "blob", d]

    def _put_pickle(self, value: Any, memo: dict[int, bytes]) -> list:
        raise UnsupportedValueError("pickle codec not available")

    def get_value(self, entry: OutputEntry) -> Any:
        """Load a stored value; corrupted objects raise :class:`CorruptObjectError`."""
        if entry.unsafe and not self.allow_pickle:
            raise StoreError(
                f"value {entry.digest} was stored with pickle (unsafe); open the store with "
                "Store(path, allow_pickle=True) if you trust whoever wrote it"
            )
        return from_tree(entry.tree, self._load_leaf)

    def _load_leaf(self, ref: list) -> Any:
        codec, d = ref[1], ref[2]
        path = self.object_path(d)
        if not path.exists():
            raise MissingObjectError(
                f"object {d} ({codec}) is not in the store at {self.root}; it may have been "
                "removed by gc. Re-run the pipeline to recompute it."
            )
        if codec == "array":
            meta = arrays.read_meta(path)
            return arrays.read_array_dir(path, meta)
        if codec == "blob":
            meta = json.loads((path / "object.json").read_text())
            data = (path / "blob").read_bytes()
            if hash_array_bytes(data).hex() != meta["chunks"]["blob"]:
                raise CorruptObjectError(f"object {d} ({path}): blob does not match its digest")
            return data
        raise StoreError(f"object {d}: unknown codec {codec!r}")

    def has_objects(self, digests: tuple[str, ...]) -> bool:
        return all(self.object_path(d).exists() for d in digests)

    # -- manifests ----------------------------------------------------------------------------------

    def manifest_path(self, run_id: str) -> Path:
        return self.manifests_dir / f"{run_id}.json"

    def write_bytes_atomic(self, final: Path, data: bytes) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.part"
        tmp.write_bytes(data)
        os.replace(tmp, final)

    @staticmethod
    def now() -> float:
        return time.time()


def open_store(store: Store | str | os.PathLike[str] | None) -> Store:
    return store if isinstance(store, Store) else Store(store)
