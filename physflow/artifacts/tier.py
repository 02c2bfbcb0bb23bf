"""A local read-through tier in front of a remote store (``Store(url, cache_dir=...)``).

Only immutable entries are kept: objects, action records, plan records, run manifests and the
layout stamp (a record, once written, is never changed -- records are published create-only --
only deleted). The recent-plans lists, claims and temp entries always go to the remote store.

Every file in the tier ends with a trailer: a 16-byte blake3 checksum of its bytes and a magic
tag. A file is served from the tier only after its checksum matches; a damaged one (disk fault,
someone editing the cache) is dropped and fetched again from the remote store, so a corrupted
tier costs a download, never a wrong value (on top of this, objects are verified against their
digests and records against their checksums by the readers, as everywhere).

The tier is bounded by bytes: files are written with the current time as modification time,
and the first read of a file in each process bumps it; when the files this process added push
the tier past its budget, the least recently used files go until it is at 90% of it. Several
processes (dask workers on one host) can share one tier: files appear by atomic rename, and a
file deleted while another process reads it stays readable to that reader (POSIX).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3

from .backend import tmp_name

MAGIC = b"PFTIER01"
TRAILER = 16 + len(MAGIC)
DEFAULT_TIER_BYTES = 10 << 30
_IMMUTABLE = ("objects/", "actions/", "manifests/")


def cacheable(rel: str) -> bool:
    """Whether ``rel`` names an immutable entry (see the module docstring)."""
    if rel.startswith(_IMMUTABLE) or rel == "store.json":
        return True
    return rel.startswith("plans/") and not rel.startswith("plans/latest/")


def _check(data: Any) -> bytes:
    threads = blake3.blake3.AUTO if len(data) >= (1 << 20) else 1
    return blake3.blake3(data, max_threads=threads).digest(16)


def _sealed(data: Any) -> list[Any]:
    return [data, _check(data), MAGIC]


def _unseal(raw: bytes) -> bytes | None:
    """The payload of a tier file, or None when its checksum does not match."""
    if len(raw) < TRAILER or raw[-len(MAGIC) :] != MAGIC:
        return None
    payload = memoryview(raw)[:-TRAILER]
    check = raw[-TRAILER : -len(MAGIC)]
    if _check(payload) != check:
        return None
    return bytes(payload) if len(payload) < (1 << 20) else payload  # type: ignore[return-value]


class TieredBackend:
    """``remote`` (any non-local backend) behind a local, verified, bounded cache directory."""

    atomic_rename = False
    is_local = False

    def __init__(self, remote: Any, cache_dir: str | os.PathLike[str], max_bytes: int) -> None:
        self.remote = remote
        self.cache_dir = Path(cache_dir).absolute()
        self.data_dir = self.cache_dir / "data"
        self.tmp_dir = self.cache_dir / "tmp"
        for path in (self.data_dir, self.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._data = f"{self.data_dir}/"
        self.max_bytes = int(max_bytes)
        self.prefix = remote.prefix
        self.url = getattr(remote, "url", None)
        self._added = 0
        self._bumped: set[str] = set()
        self.refetched = 0  # damaged tier files replaced from the remote store (for tests)

    def __getattr__(self, name: str) -> Any:
        """The remote's own extras (client, fs, conditional; read_tagged and replace for the
        mutable recent-plans lists, which never enter the tier) -- or AttributeError."""
        if name == "remote":
            raise AttributeError(name)
        return getattr(self.remote, name)

    # -- the tier ---------------------------------------------------------------------------------

    def _local(self, rel: str) -> bytes | None:
        path = self._data + rel
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        try:
            raw = _read_fd(fd)
        finally:
            os.close(fd)
        data = _unseal(raw)
        if data is None:
            self.refetched += 1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return None
        if rel not in self._bumped:
            self._bumped.add(rel)
            with contextlib.suppress(OSError):
                os.utime(path)
        return data

    def keep(self, rel: str, data: Any) -> None:
        """Put a copy of ``rel`` in the tier (best effort: a full disk only costs speed)."""
        if not cacheable(rel) or self.max_bytes <= 0:
            return
        path = self._data + rel
        tmp = f"{self.tmp_dir}/{tmp_name('.tier')}"
        try:
            with open(tmp, "wb") as fh:
                for part in _sealed(data):
                    fh.write(part)
            try:
                os.replace(tmp, path)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self._added += len(memoryview(data).cast("B")) + TRAILER
        if self._added > self.max_bytes // 10:
            self.evict()

    def drop(self, rel: str) -> None:
        """Forget ``rel`` (a file, or everything below a directory) in the tier."""
        path = self._data + rel
        if os.path.isdir(path) and not os.path.islink(path):
            grave = f"{self.tmp_dir}/{tmp_name('.drop')}"
            with contextlib.suppress(OSError):
                os.rename(path, grave)
                _rmtree(grave)
        else:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                os.unlink(path)

    def evict(self) -> int:
        """Delete least-recently-used files until the tier is within 90% of its budget;
        returns the bytes freed."""
        self._added = 0
        files = []
        total = 0
        for path, size, mtime in _files(str(self.data_dir)):
            files.append((mtime, size, path))
            total += size
        freed = 0
        if total <= self.max_bytes:
            return 0
        target = int(self.max_bytes * 0.9)
        for _mtime, size, path in sorted(files):
            if total - freed <= target:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                freed += size
        return freed

    def tier_bytes(self) -> int:
        return sum(size for _p, size, _m in _files(str(self.data_dir)))

    # -- backend interface: reads go through the tier ----------------------------------------------

    def abspath(self, rel: str) -> str:
        return self.remote.abspath(rel)

    def local_path(self, rel: str) -> str | None:
        return None  # tier files carry a trailer and are verified on every read

    def makedirs(self, rel: str) -> None:
        self.remote.makedirs(rel)

    def exists(self, rel: str) -> bool:
        if cacheable(rel) and os.path.exists(self._data + rel):
            return True
        return self.remote.exists(rel)

    def read(self, rel: str) -> bytes:
        if cacheable(rel):
            data = self._local(rel)
            if data is not None:
                return data
        data = self.remote.read(rel)
        self.keep(rel, data)
        return data

    def write_atomic(self, rel: str, data: bytes) -> None:
        self.drop(rel)
        self.remote.write_atomic(rel, data)
        self.keep(rel, data)

    def create(self, rel: str, data: Any) -> bool:
        created = self.remote.create(rel, data)
        if created and isinstance(data, bytes | bytearray | memoryview):
            self.keep(rel, data)
        return created

    def delete_if(self, rel: str, data: bytes) -> None:
        self.drop(rel)
        self.remote.delete_if(rel, data)

    def new_sink(self) -> tuple[str, Any]:
        return self.remote.new_sink()

    def publish(self, tmp_rel: str, final_rel: str, marker: str) -> None:
        """Publish remotely; when this writer's copy is the published one, keep its files in
        the tier too (write-through), marker last."""
        if self.max_bytes <= 0 or not hasattr(self.remote, "staged"):
            self.remote.publish(tmp_rel, final_rel, marker)
            return

        def adopt(staged: Path) -> None:
            for path, _size, _mtime in _files(str(staged)):
                rel = path[len(str(staged)) + 1 :]
                if rel != marker:
                    with open(path, "rb") as fh:
                        self.keep(f"{final_rel}/{rel}", fh.read())
            with open(staged / marker, "rb") as fh:
                self.keep(f"{final_rel}/{marker}", fh.read())

        self.remote.publish(tmp_rel, final_rel, marker, on_published=adopt)

    def discard(self, tmp_rel: str) -> None:
        self.remote.discard(tmp_rel)

    def remove(self, rel: str) -> None:
        self.drop(rel)
        self.remote.remove(rel)

    def unpublish(self, rel: str) -> None:
        self.drop(rel)
        self.remote.unpublish(rel)

    def move(self, src_rel: str, dst_rel: str) -> None:
        self.drop(src_rel)
        self.remote.move(src_rel, dst_rel)

    def listdir(self, rel: str) -> list[str]:
        return self.remote.listdir(rel)

    def walk(self, rel: str) -> Iterator[tuple[str, int, float]]:
        return self.remote.walk(rel)

    def mtime(self, rel: str) -> float:
        return self.remote.mtime(rel)

    def touch(self, rel: str) -> None:
        self.remote.touch(rel)


def _read_fd(fd: int) -> bytes:
    data = os.read(fd, 1 << 16)  # records and markers: one read, no stat
    if len(data) < 1 << 16:
        return data
    buf = bytearray(os.fstat(fd).st_size)
    view = memoryview(buf)
    view[: len(data)] = data
    done = len(data)
    while done < len(buf) and (n := os.readv(fd, [view[done:]])):
        done += n
    return buf if done == len(buf) else buf[:done]  # type: ignore[return-value]


def _files(root: str) -> Iterator[tuple[str, int, float]]:
    """(path, size, mtime) of every file below ``root`` (vanishing files skipped)."""
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    yield entry.path, st.st_size, st.st_mtime
            except FileNotFoundError:
                continue


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
