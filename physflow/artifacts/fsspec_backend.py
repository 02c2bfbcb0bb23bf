"""A store on any fsspec filesystem: entries are published marker-last (see :mod:`.backend`).

fsspec filesystems generally cannot rename a directory atomically, so an entry's data files
are written first and its metadata file (the *marker*) last; an entry counts as present only
once its marker exists. Readers verify every chunk against the digests in the marker.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from .backend import Sink, _link_create, tmp_name


class FsspecSink(Sink):
    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root
        self._dirs: set[str] = {root}

    def write(self, rel: str, data: Any) -> None:
        path = f"{self.root}/{rel}"
        parent = path.rsplit("/", 1)[0]
        if parent not in self._dirs:
            self.fs.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        self.fs.pipe_file(path, bytes(data))

    def read(self, rel: str) -> bytes:
        return self.fs.cat_file(f"{self.root}/{rel}")

    def has(self, rel: str) -> bool:
        return bool(self.fs.exists(f"{self.root}/{rel}"))


class FsspecBackend:
    """A store on any fsspec filesystem; entries are published marker-last (see module doc)."""

    atomic_rename = False
    is_local = False

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self.fs = fs
        self.url = url
        self.prefix = path.rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._on_disk = "file" in protocols or "local" in protocols
        #: Whether create() is enforced: a local (or NFS) path links; s3fs sends If-None-Match,
        #: which is probed once (s3fs #973: a create can silently become an overwrite).
        self.conditional = self._on_disk
        if not self._on_disk and {"s3", "s3a"} & set(protocols):
            from .remote_client import FsspecProbeClient, probe_conditional

            probe = FsspecProbeClient(self)
            self.conditional = probe_conditional(probe, f"tmp/probe-{tmp_name()}")

    def abspath(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def local_path(self, rel: str) -> str | None:
        return None

    def makedirs(self, rel: str) -> None:
        self.fs.makedirs(self.abspath(rel), exist_ok=True)

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.abspath(rel))

    def read(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.abspath(rel))
        except FileNotFoundError:
            raise
        except OSError as exc:  # some filesystems raise other errors for missing keys
            if not self.fs.exists(self.abspath(rel)):
                raise FileNotFoundError(rel) from exc
            raise

    def write_atomic(self, rel: str, data: bytes) -> None:
        # One whole-file put: atomic on object stores; on others written then renamed.
        final = self.abspath(rel)
        parent = final.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = self.abspath("tmp/" + tmp_name(".part"))
        self.fs.pipe_file(tmp, data)
        try:
            self.fs.mv(tmp, final)
        except Exception:
            self.fs.pipe_file(final, data)
            with contextlib.suppress(Exception):
                self.fs.rm(tmp)

    def create(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` only if absent; enforced where :attr:`conditional` (else a check then
        a write: content addressing keeps values right, concurrent writers may repeat work)."""
        if self._on_disk:
            return _link_create(self.abspath(rel), self.abspath("tmp/" + tmp_name(".new")), data)
        self.fs.makedirs(self.abspath(rel).rsplit("/", 1)[0], exist_ok=True)
        try:
            self.fs.pipe_file(self.abspath(rel), bytes(data), mode="create")
        except FileExistsError:
            return False
        return True

    def delete_if(self, rel: str, data: bytes) -> None:
        with contextlib.suppress(OSError):
            if self.read(rel) == data:
                self.fs.rm(self.abspath(rel))

    def new_sink(self) -> tuple[str, FsspecSink]:
        rel = "tmp/" + tmp_name()
        self.fs.makedirs(self.abspath(rel), exist_ok=True)
        return rel, FsspecSink(self.fs, self.abspath(rel))

    def publish(self, tmp_rel: str, final_rel: str, marker: str) -> None:
        """Copy data files into place, then the marker; the entry is visible only after that."""
        if self.exists(f"{final_rel}/{marker}"):
            self.discard(tmp_rel)
            return
        src = self.abspath(tmp_rel)
        files = sorted(self.fs.find(src))
        marker_src = f"{src}/{marker}"
        for path in files:
            if path != marker_src:
                self._move_file(path, self.abspath(final_rel) + path[len(src) :])
        self._move_file(marker_src, self.abspath(f"{final_rel}/{marker}"))
        self.discard(tmp_rel)

    def _move_file(self, src: str, dst: str) -> None:
        parent = dst.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        try:
            self.fs.mv(src, dst)  # a rename or server-side copy where the filesystem has one
        except Exception:
            self.fs.pipe_file(dst, self.fs.cat_file(src))

    def discard(self, tmp_rel: str) -> None:
        self.remove(tmp_rel)

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.abspath(rel), recursive=True)

    def unpublish(self, rel: str) -> None:
        """Remove an entry: its marker first (so it stops existing at once), then the rest."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.abspath(f"{rel}/zarr.json"))
        self.remove(rel)

    def move(self, src_rel: str, dst_rel: str) -> None:
        src = self.abspath(src_rel)
        dst = self.abspath(dst_rel)
        if self.fs.isdir(src):
            for path in self.fs.find(src):
                self._move_file(path, dst + path[len(src) :])
        else:
            self._move_file(src, dst)
        self.remove(src_rel)

    def listdir(self, rel: str) -> list[str]:
        try:
            entries = self.fs.ls(self.abspath(rel), detail=False)
        except FileNotFoundError:
            return []
        return [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def walk(self, rel: str) -> Iterator[tuple[str, int, float]]:
        base = self.abspath(rel)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            yield rel + path[len(base) :], int(info.get("size") or 0), _info_mtime(info)

    def mtime(self, rel: str) -> float:
        return _info_mtime(self.fs.info(self.abspath(rel)))

    def touch(self, rel: str) -> None:
        # Rewriting is the portable way to bump a modification time on any filesystem.
        with contextlib.suppress(Exception):
            path = self.abspath(rel)
            self.fs.pipe_file(path, self.fs.cat_file(path))


def _info_mtime(info: dict[str, Any]) -> float:
    for key in ("mtime", "created", "LastModified", "last_modified", "updated"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
    return time.time()
