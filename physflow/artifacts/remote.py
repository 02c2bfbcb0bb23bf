"""A store on an object store (``s3://``, ``gs://``, ``az://``): create-only publication.

Object stores have no rename, so nothing is moved into place. An object is written to a local
staging directory (``tmp/...`` names map there), then uploaded straight to its final keys with
**create-only** PUTs (``If-None-Match: *``): data files first, the ``zarr.json`` marker last --
an object exists once its marker does, and every chunk read is verified against the digests in
the marker. Action records and plan records are create-only PUTs too (see
:class:`~.record_store.FileRecords`); the per-name list of recent plans, the one mutable entry,
is replaced by compare-and-swap (``If-Match`` on its ETag).

A lost race is success when the existing bytes are the same (content addressing makes
duplicates harmless) and a :class:`PublishConflictError` otherwise -- a verified error, never a
silent overwrite. Whether the server and client really enforce the conditions is *probed* once
per process and store (:func:`~.remote_client.probe_conditional`); where they do not (an old
S3-compatible server, a client that drops the header as s3fs did in #973), the backend warns and
falls back to check-then-write, which keeps values correct (content addressing, checksums) but
can duplicate work, and :class:`~.claims.Claims` refuses to hand out claims.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3

from .backend import LocalSink, tmp_name
from .errors import StoreError
from .remote_client import ConditionFailed, ObjectClient, probe_conditional, split_url

#: Files above this size are uploaded in parts (a single PUT allows 5 GiB). Multipart uploads
#: cannot be create-only through obstore, so they are only started when the key is absent;
#: a concurrent writer of the same key writes the same bytes (the chunk of the same object).
SINGLE_PUT_MAX = 1 << 30
#: Data files of one object uploaded at once.
UPLOAD_THREADS = 8
_PROBED: dict[tuple[str, str], bool] = {}


class ConditionalWritesWarning(UserWarning):
    """The object store does not enforce create-only writes (see the module docstring)."""


class PublishConflictError(StoreError):
    """A create-only write found different bytes at a content-addressed key."""


class ObjectStoreBackend:
    """The backend interface of :mod:`.backend` on an object store, plus conditional writes."""

    atomic_rename = False
    is_local = False

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        *,
        staging_dir: str | os.PathLike[str] | None = None,
        client: Any = None,
    ) -> None:
        _scheme, bucket, prefix = split_url(url)
        self.url = url
        self.prefix = f"{bucket}/{prefix}".rstrip("/")
        self.client = client if client is not None else ObjectClient(url, storage_options)
        base = staging_dir or Path(tempfile.gettempdir()) / f"physflow-staging-{os.getuid()}"
        self.staging = Path(base)
        self.staging.mkdir(parents=True, exist_ok=True)
        _sweep_staging(self.staging)
        probe_key = (url, repr(sorted((storage_options or {}).items())))
        honoured = _PROBED.get(probe_key) if client is None else None
        if honoured is None:  # once per process and store (an injected client: every time)
            honoured = probe_conditional(self.client, f"tmp/probe-{tmp_name()}")
            if client is None:
                _PROBED[probe_key] = honoured
        #: True when create-only and compare-and-swap writes are enforced (probed).
        self.conditional = honoured
        if not honoured:
            warnings.warn(
                f"the object store at {url} does not enforce conditional writes "
                "(If-None-Match / If-Match were ignored or refused by the server or client); "
                "physflow falls back to check-then-write: values stay correct, but concurrent "
                "writers may repeat work and claims are disabled. See docs/store.md, "
                "'Shared stores'.",
                ConditionalWritesWarning,
                stacklevel=3,
            )

    # -- paths ------------------------------------------------------------------------------------

    def abspath(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def local_path(self, rel: str) -> str | None:
        return None

    def makedirs(self, rel: str) -> None:
        return None  # object stores have no directories

    # -- single entries ---------------------------------------------------------------------------

    def exists(self, rel: str) -> bool:
        return self.client.head(rel) is not None

    def read(self, rel: str) -> bytes:
        return self.client.get(rel)

    def write_atomic(self, rel: str, data: bytes) -> None:
        """One whole PUT (atomic on object stores; last writer wins)."""
        self.client.put(rel, data)

    def create(self, rel: str, data: bytes | Path) -> bool:
        """Create ``rel`` only if absent; False when something is already there."""
        if not self.conditional:
            if self.exists(rel):
                return False
            self.client.put(rel, data)
            return True
        try:
            self.client.put(rel, data, create=True)
        except FileExistsError:
            return False
        return True

    def read_tagged(self, rel: str) -> tuple[bytes, str | None] | None:
        """Bytes and version tag of ``rel`` (None when absent), for :meth:`replace`."""
        try:
            return self.client.get_tagged(rel)
        except FileNotFoundError:
            return None

    def replace(self, rel: str, data: bytes, tag: str | None) -> bool:
        """Compare-and-swap: write ``data`` if ``rel`` still has version ``tag`` (None: still
        absent). False when it changed meanwhile."""
        if not self.conditional:
            self.client.put(rel, data)
            return True
        try:
            if tag is None:
                self.client.put(rel, data, create=True)
            else:
                self.client.put(rel, data, if_match=tag)
        except (FileExistsError, ConditionFailed):
            return False
        return True

    def delete_if(self, rel: str, data: bytes) -> None:
        """Delete ``rel`` if it still holds ``data`` (damaged entries are replaced this way)."""
        current = self.read_tagged(rel)
        if current is not None and current[0] == data:
            self.client.delete([rel])

    # -- objects: staged locally, published create-only ----------------------------------------

    def new_sink(self) -> tuple[str, LocalSink]:
        name = tmp_name()
        path = self.staging / name
        path.mkdir()
        return f"tmp/{name}", LocalSink(str(path))

    def staged(self, tmp_rel: str) -> Path | None:
        """The local staging directory of a sink's ``tmp/<name>`` (None for other names)."""
        if not tmp_rel.startswith("tmp/"):
            return None
        path = self.staging / tmp_rel[4:]
        return path if path.is_dir() else None

    def publish(self, tmp_rel: str, final_rel: str, marker: str, on_published: Any = None) -> None:
        """Upload a complete staged object: data files first, its marker last, each create-only.
        ``on_published(staged dir)`` runs when this writer's copy became the object."""
        local = self.staged(tmp_rel)
        if local is None:
            raise StoreError(f"nothing staged under {tmp_rel} to publish as {final_rel}")
        try:
            if publish_dir(self, local, final_rel, marker) and on_published is not None:
                on_published(local)
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def discard(self, tmp_rel: str) -> None:
        local = self.staged(tmp_rel)
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
        else:
            self.remove(tmp_rel)

    def remove(self, rel: str) -> None:
        """Delete ``rel`` and everything below it."""
        paths = [meta["path"] for meta in self.client.list(rel)]
        if self.client.head(rel) is not None:
            paths.append(rel)
        for start in range(0, len(paths), 1000):
            self.client.delete(paths[start : start + 1000])

    def unpublish(self, rel: str) -> None:
        """Remove an entry: its marker first (it stops existing at once), then the rest."""
        self.client.delete([f"{rel}/zarr.json"])
        self.remove(rel)

    def move(self, src_rel: str, dst_rel: str) -> None:
        """Copy server-side, then delete (quarantine; never on the hot path)."""
        found = [meta["path"] for meta in self.client.list(src_rel)]
        if not found and self.client.head(src_rel) is not None:
            self.client.copy(src_rel, dst_rel)
        for path in found:
            self.client.copy(path, dst_rel + path[len(src_rel) :])
        self.remove(src_rel)

    # -- listings ---------------------------------------------------------------------------------

    def listdir(self, rel: str) -> list[str]:
        dirs, objects = self.client.list_dir(rel)
        names = [d.rstrip("/").rsplit("/", 1)[-1] for d in dirs]
        return names + [meta["path"].rsplit("/", 1)[-1] for meta in objects]

    def walk(self, rel: str) -> Iterator[tuple[str, int, float]]:
        for meta in self.client.list(rel):
            yield meta["path"], int(meta.get("size") or 0), _timestamp(meta)

    def mtime(self, rel: str) -> float:
        meta = self.client.head(rel)
        if meta is None:
            raise FileNotFoundError(rel)
        return _timestamp(meta)

    def touch(self, rel: str) -> None:
        """Bump a record's modification time by rewriting it, only if unchanged meanwhile."""
        with contextlib.suppress(Exception):
            current = self.read_tagged(rel)
            if current is not None:
                self.replace(rel, current[0], current[1])


def _sweep_staging(staging: Path) -> None:
    """Remove staged copies left by writers on this host that died (kill -9) before publishing."""
    for entry in os.scandir(staging):
        pid = entry.name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            continue


def _timestamp(meta: dict[str, Any]) -> float:
    value = meta.get("last_modified")
    return float(value.timestamp()) if hasattr(value, "timestamp") else 0.0


def _digest_named(marker: bytes) -> str | None:
    import json

    try:
        return json.loads(marker)["attributes"]["physflow"]["digest"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


class _Published(Exception):
    """Another writer published the same object meanwhile."""


def publish_dir(backend: Any, local: Path, final_rel: str, marker: str) -> bool:
    """Upload every file under ``local`` to ``final_rel``, ``marker`` last, each create-only;
    True when the published object is byte for byte this copy.

    A key that already holds the same bytes is fine (a crashed or concurrent writer of the same
    object); once the marker exists the object is complete and the rest is skipped. Different
    bytes are a :class:`PublishConflictError` naming the key. (Callers check for an existing
    object first -- ``Store.write_object`` -- so that is not repeated here.)
    """
    names = sorted(
        str(p.relative_to(local)) for p in local.rglob("*") if p.is_file() and p.name != marker
    )
    try:
        _create_all(backend, local, names, final_rel, marker)
        _create_file(backend, local / marker, f"{final_rel}/{marker}", final_rel, marker)
    except _Published:
        return False
    return True


def _create_all(backend: Any, local: Path, names: list[str], final_rel: str, marker: str) -> None:
    """Upload data files, several at once (requests release the GIL); first error wins."""
    if len(names) <= 1:
        for name in names:
            _create_file(backend, local / name, f"{final_rel}/{name}", final_rel, marker)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(UPLOAD_THREADS, len(names))) as pool:
        futures = [
            pool.submit(_create_file, backend, local / n, f"{final_rel}/{n}", final_rel, marker)
            for n in names
        ]
        errors = [f.exception() for f in futures]
    for error in errors:  # another writer's object beats a conflict report, which beats none
        if isinstance(error, _Published):
            raise error
    for error in errors:
        if error is not None:
            raise error


def _create_file(backend: Any, path: Path, rel: str, final_rel: str, marker: str) -> None:
    size = path.stat().st_size
    if size > SINGLE_PUT_MAX:
        if not backend.exists(rel):
            backend.client.put(rel, path, multipart=True)
        return
    if backend.create(rel, path.read_bytes() if size < (1 << 20) else path):
        return
    try:
        theirs = backend.read(rel)
    except FileNotFoundError:  # removed meanwhile (gc of a leftover): write ours
        backend.client.put(rel, path)
        return
    ours = path.read_bytes()
    if blake3.blake3(theirs).digest() == blake3.blake3(ours).digest():
        return
    if rel.endswith(f"/{marker}"):
        named = _digest_named(theirs)
        if named is not None and named.rsplit(":", 1)[-1] == final_rel.rsplit("/", 1)[-1]:
            raise _Published  # the same object, published by another writer (other chunking)
    elif backend.exists(f"{final_rel}/{marker}"):
        raise _Published
    raise PublishConflictError(
        f"{backend.abspath(rel)} already exists with other bytes than this writer's: a writer "
        "that crashed or runs now stores the same value with another chunking or compression. "
        "Nothing was overwritten. If no other writer is running, remove the unpublished entry "
        f"({backend.abspath(final_rel)}, it has no {marker}) or run store.gc(), then retry."
    )


def open_url_backend(
    url: str,
    storage_options: dict[str, Any] | None,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_bytes: int | None = None,
) -> Any:
    """The backend of a store URL: object stores through obstore (create-only publication),
    anything else through fsspec; behind a local tier when ``cache_dir`` is given.

    ``storage_options={"physflow_client": "fsspec"}`` keeps an object store on fsspec (s3fs).
    """
    from .fsspec_backend import FsspecBackend
    from .remote_client import OBJECT_SCHEMES
    from .tier import DEFAULT_TIER_BYTES, TieredBackend

    options = dict(storage_options or {})
    wanted = options.pop("physflow_client", None)
    if wanted not in (None, "obstore", "fsspec"):
        raise ValueError(
            f"storage_options physflow_client={wanted!r}: expected 'obstore' or 'fsspec'"
        )
    scheme = split_url(url)[0]
    backend: Any
    if scheme in OBJECT_SCHEMES and wanted != "fsspec":
        try:
            import obstore  # noqa: F401
        except ImportError:
            if wanted == "obstore":
                raise
            backend = FsspecBackend(url, options)
        else:
            staging = Path(cache_dir) / "staging" if cache_dir is not None else None
            backend = ObjectStoreBackend(url, options, staging_dir=staging)
    else:
        backend = FsspecBackend(url, options)
    if cache_dir is None:
        return backend
    size = DEFAULT_TIER_BYTES if cache_bytes is None else cache_bytes
    return TieredBackend(backend, cache_dir, size)
