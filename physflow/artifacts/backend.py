"""Where store bytes live: a local directory (plain os calls) or any fsspec filesystem.

Both backends offer the same small set of operations on paths relative to the store root
("objects/ab/<hex>/zarr.json"). The local backend publishes whole directories with one atomic
``rename``; fsspec filesystems generally cannot, so there an entry is published by writing its
data files first and its metadata file (the *marker*) last, and an entry counts as present only
once its marker exists. Readers verify every chunk they read against the digests in the marker,
so a torn entry is detected, never served.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .hashed_write import write_hashed

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def tmp_name(suffix: str = "") -> str:
    """A unique temp name that records the writer's pid (gc removes those of dead writers)."""
    return f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"


class Sink:
    """A directory being written (under ``tmp/`` locally)."""

    def write(self, rel: str, data: Any) -> None:
        raise NotImplementedError

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def has(self, rel: str) -> bool:
        """Whether a file written into the sink is still there."""
        raise NotImplementedError

    def write_hashed(self, rel: str, data: Any, hashers: list[Any]) -> None:
        """Write ``data`` and feed it to the blake3 ``hashers`` (overlapped where possible)."""
        view = memoryview(data).cast("B")
        for hasher in hashers:
            hasher.update(view)
        self.write(rel, view)


class LocalSink(Sink):
    def __init__(self, root: str) -> None:
        self.root = root
        self._dirs: set[str] = {root}

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def has(self, rel: str) -> bool:
        return os.path.isfile(self.path(rel))

    def write(self, rel: str, data: Any) -> None:
        path = self.path(rel)
        parent = os.path.dirname(path)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        with open(path, "wb") as fh:
            fh.write(data)

    def read(self, rel: str) -> bytes:
        with open(self.path(rel), "rb") as fh:
            return fh.read()

    def write_hashed(self, rel: str, data: Any, hashers: list[Any]) -> None:
        path = self.path(rel)
        parent = os.path.dirname(path)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        write_hashed(path, data, hashers)


def _link_create(final: str, tmp: str, data: bytes) -> bool:
    os.makedirs(os.path.dirname(final), exist_ok=True)
    with open(tmp, "wb") as fh:
        fh.write(data)
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True


class LocalBackend:
    """A store in a local directory; entries are published by atomic rename."""

    atomic_rename = True
    is_local = True
    conditional = True  # create() is atomic (link)

    def __init__(self, root: Path, cache_dir: Any = None) -> None:
        if cache_dir is not None:  # a local path is its own fastest tier
            raise ValueError(
                f"Store({str(root)!r}, cache_dir=...): a local tier is for URL stores; for a "
                f"store on a network filesystem shared by several hosts open it as 'file://{root}'"
            )
        self.root = root
        self.prefix = str(root)

    def abspath(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def local_path(self, rel: str) -> str | None:
        return self.abspath(rel)

    def makedirs(self, rel: str) -> None:
        os.makedirs(self.abspath(rel), exist_ok=True)

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.abspath(rel))

    def read(self, rel: str) -> bytes:
        """The file's bytes; a symlink in the store is never followed (ELOOP -> OSError)."""
        fd = os.open(self.abspath(rel), os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def write_atomic(self, rel: str, data: bytes) -> None:
        final = self.abspath(rel)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = self.abspath("tmp/" + tmp_name(".part"))
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def create(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` only if absent (False when it exists): ``link`` of a complete temp
        file, which is atomic on local disks and on NFS alike."""
        return _link_create(self.abspath(rel), self.abspath("tmp/" + tmp_name(".new")), data)

    def delete_if(self, rel: str, data: bytes) -> None:
        """Delete ``rel`` if it still holds ``data`` (how a damaged entry is replaced)."""
        with contextlib.suppress(OSError):
            if self.read(rel) == data:
                os.unlink(self.abspath(rel))

    def new_sink(self) -> tuple[str, LocalSink]:
        rel = "tmp/" + tmp_name()
        os.mkdir(self.abspath(rel))
        return rel, LocalSink(self.abspath(rel))

    def publish(self, tmp_rel: str, final_rel: str, marker: str) -> None:
        """Move a complete temp directory into place; an identical entry already there wins
        (and if that entry is removed by a gc between the two, the rename is tried again)."""
        final = self.abspath(final_rel)
        for attempt in range(3):
            os.makedirs(os.path.dirname(final), exist_ok=True)
            try:
                os.rename(self.abspath(tmp_rel), final)
                return
            except OSError:
                if os.path.exists(final):
                    self.remove(tmp_rel)
                    return
                if attempt == 2:
                    raise

    def discard(self, tmp_rel: str) -> None:
        self.remove(tmp_rel)

    def remove(self, rel: str) -> None:
        """Remove a file, link (never its target) or directory tree; absent is fine.

        Unlink first and look again only when that fails: a directory that a concurrent
        writer re-creates between a check and the unlink is still removed.
        """
        path = self.abspath(rel)
        for attempt in range(3):  # another process may swap a file and a directory meanwhile
            try:
                os.unlink(path)
                return
            except FileNotFoundError:
                return
            except (IsADirectoryError, PermissionError):  # PermissionError: unlink(dir), macOS
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                    return
                if attempt == 2:
                    raise

    def move(self, src_rel: str, dst_rel: str) -> None:
        dst = self.abspath(dst_rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(self.abspath(src_rel), dst)

    def unpublish(self, rel: str) -> None:
        """Remove a visible entry atomically (rename into tmp/, then delete), so a concurrent
        reader sees it whole or not at all."""
        grave = "tmp/" + tmp_name(".gc")
        try:
            os.rename(self.abspath(rel), self.abspath(grave))
        except FileNotFoundError:
            return
        self.remove(grave)

    def listdir(self, rel: str) -> list[str]:
        try:
            return os.listdir(self.abspath(rel))
        except FileNotFoundError:
            return []

    def walk(self, rel: str) -> Iterator[tuple[str, int, float]]:
        """(relative file path, size, mtime) of every file below ``rel``."""
        base = self.abspath(rel)
        for dirpath, _dirs, files in os.walk(base):  # never descends into linked directories
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):  # links are not store entries: never followed
                    yield rel + path[len(base) :], st.st_size, st.st_mtime

    def mtime(self, rel: str) -> float:
        return os.stat(self.abspath(rel)).st_mtime

    def touch(self, rel: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.abspath(rel))
