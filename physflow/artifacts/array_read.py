"""Reading zarr v3 objects back, verifying every chunk (and the metadata) against the digests
recorded when they were written: a changed byte raises :class:`CorruptObjectError`."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.array_rules import array_bytes_view
from .errors import CorruptObjectError, MissingObjectError
from .zarr_meta import (
    META,
    Layout,
    _hash_hex,
    _zstd,
    is_compressed,
    layout_check,
    meta_check,
    numpy_dtype,
)


class Source:
    """Read access to one stored object directory (local or fsspec).

    ``on_corrupt(digest)`` is called (once) when a read finds the object damaged: the store
    quarantines it and drops the records that use it, so the next run recomputes it.
    """

    def __init__(
        self, backend: Any, rel: str, name: str, on_corrupt: Callable[[str], Any] | None = None
    ) -> None:
        self.backend = backend
        self.rel = rel
        self.name = name  # the object digest, for error messages
        self._on_corrupt = on_corrupt

    def corrupt(self, what: str) -> CorruptObjectError:
        """The error for a damaged object (healing the store first, when it can)."""
        healed = ""
        if self._on_corrupt is not None:
            on_corrupt, self._on_corrupt = self._on_corrupt, None
            try:
                on_corrupt(self.name)
                healed = (
                    " It was moved to quarantine/ and the records that use it were dropped: "
                    "the next run recomputes it."
                )
            except Exception:  # healing is best effort: the error below is what matters
                healed = " Run 'physflow cache verify' to quarantine it."
        return CorruptObjectError(
            f"object {self.name}: {what}; it will not be served.{healed}", digest=self.name
        )

    def read(self, key: str) -> bytes:
        try:
            return self.backend.read(f"{self.rel}/{key}")
        except FileNotFoundError:
            raise self.vanished(key) from None
        except OSError as exc:  # a link (never followed), a directory, unreadable
            raise self.corrupt(f"file {key} cannot be read ({exc.strerror or exc})") from None

    def vanished(self, key: str) -> MissingObjectError | CorruptObjectError:
        """The error for a member file that is not there: the whole object gone is gc at work
        (missing: recomputed), one file gone from an object still there is damage."""
        if not self.backend.exists(self.rel):
            return MissingObjectError(
                f"object {self.name} was removed (by gc?) while it was being read; re-run "
                "to recompute it",
                digest=self.name,
            )
        return self.corrupt(f"file {key} is missing")

    def local_path(self, key: str) -> str | None:
        return self.backend.local_path(f"{self.rel}/{key}")

    def meta(self, prefix: str = "") -> dict:
        """A ``zarr.json`` of this object, verified whole before anything in it is used."""
        if prefix and not _SAFE_FOLDER.match(prefix):
            raise self.corrupt(f"it names a member {prefix!r} outside it")
        key = f"{prefix}/{META}" if prefix else META
        try:
            meta = json.loads(self.read(key))
            problem = _meta_problem(meta, self.name if not prefix else None)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
            problem = f"is not a valid zarr.json ({type(exc).__name__})"
        if problem is not None:
            raise self.corrupt(f"{key} {problem}")
        return meta


#: Member folders of an object (xarray variables): no path separators, no leading dots.
_SAFE_FOLDER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")


def _meta_problem(meta: dict, owner: str | None) -> str | None:
    """What is wrong with a metadata document (None: it is intact and belongs here)."""
    physflow = meta["attributes"]["physflow"]
    if owner is not None and physflow.get("digest") != owner:
        return f"names digest {physflow.get('digest')!r}"
    check = physflow.get("meta_check")
    if check is None:  # written before whole-document checks: arrays keep their layout check
        return "has no metadata check" if meta.get("node_type") == "group" else None
    if check != meta_check(meta):
        return "does not match its metadata check (altered)"
    return None


def decode_chunk(
    data: Any, dtype: np.dtype, layout: Layout, index: tuple[int, ...], compressed: bool
) -> np.ndarray:
    """The region of chunk ``index`` (edge chunks cropped) from its stored bytes."""
    if compressed:
        data = _zstd().decode(data)
    full = np.frombuffer(data, dtype=dtype)
    if full.size != math.prod(layout.chunks):
        raise ValueError("chunk has the wrong size")
    full = full.reshape(layout.chunks)
    return full[tuple(slice(0, n) for n in layout.region_shape(index))]


class ArrayReader:
    """Verified reads of one stored array (all of it, or chunk by chunk for lazy access)."""

    def __init__(self, source: Source, prefix: str = "", meta: dict | None = None) -> None:
        self.source = source
        self.prefix = prefix
        self.meta = meta if meta is not None else source.meta(prefix)
        try:
            self.physflow = self.meta["attributes"]["physflow"]
            self.dtype = numpy_dtype(self.meta)
            shape = tuple(self.meta["shape"])
            chunks = tuple(self.meta["chunk_grid"]["configuration"]["chunk_shape"])
            self.layout = Layout(shape, chunks)
            self.compressed = is_compressed(self.meta)
            self.expected: dict[str, str] = self.physflow["chunks"]
            if self.physflow.get("check") != layout_check(self.meta):
                raise ValueError("its layout check does not match (altered metadata)")
            if not prefix and self.physflow["digest"] != source.name:
                raise ValueError(f"it names digest {self.physflow['digest']}")
        except (KeyError, TypeError, ValueError) as exc:
            raise source.corrupt(f"metadata {prefix or '.'}/{META} is malformed ({exc})") from None
        self.shape = self.layout.shape
        self.ndim = len(self.shape)

    def _key(self, index: tuple[int, ...]) -> str:
        key = Layout.key(index)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _corrupt(self, key: str, why: str) -> CorruptObjectError:
        return self.source.corrupt(f"chunk {key} {why}")

    def read_chunk(self, index: tuple[int, ...]) -> np.ndarray:
        key = Layout.key(index)
        expected = self.expected.get(key)
        if expected is None:
            raise self._corrupt(key, "has no recorded digest")
        data = self.source.read(self._key(index))
        if _hash_hex(data) != expected:
            raise self._corrupt(key, "does not match its digest")
        try:
            return decode_chunk(data, self.dtype, self.layout, index, self.compressed)
        except Exception as exc:
            raise self._corrupt(key, f"cannot be decoded ({exc})") from None

    def _mmap_single(self) -> np.ndarray | None:
        """Memory-map an uncompressed single-chunk local array (copy-on-write), verified."""
        if (
            self.compressed
            or self.layout.nchunks != 1
            or self.layout.chunks != tuple(max(1, s) for s in self.shape)
        ):
            return None
        index = (0,) * self.ndim
        path = self.source.local_path(self._key(index))
        if path is None or os.path.islink(path):  # a link is read (and refused) by read_chunk
            return None
        key = Layout.key(index)
        expected_bytes = self.layout.size * self.dtype.itemsize
        try:
            size = os.path.getsize(path)
            if size != expected_bytes:
                raise self._corrupt(key, f"has {size} bytes, expected {expected_bytes}")
            mapped = np.memmap(path, dtype=self.dtype, mode="c", shape=self.shape)
        except FileNotFoundError:  # gc may remove the object between any two of these steps
            raise self.source.vanished(self._key(index)) from None
        array = mapped.view(np.ndarray)
        if _hash_hex(array_bytes_view(array)) != self.expected.get(key):
            raise self._corrupt(key, "does not match its digest")
        return array

    def read_all(self) -> np.ndarray:
        if self.layout.size == 0:
            return np.zeros(self.shape, dtype=self.dtype)
        mapped = self._mmap_single()
        if mapped is not None:
            return mapped
        out = np.empty(self.shape, dtype=self.dtype)
        for index in self.layout.indices():
            out[self.layout.region(index)] = self.read_chunk(index)
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        """Read a region, touching (and verifying) only the chunks it overlaps (for dask)."""
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        bounds = []
        for k, s in zip(key, self.shape):
            if isinstance(k, slice):
                start, stop, step = k.indices(s)
                if step != 1:
                    return self.read_all()[key]
            else:
                start, stop = int(k) % s if s else 0, int(k) % s + 1 if s else 0
            bounds.append((start, stop))
        out_shape = tuple(b - a for a, b in bounds)
        out = np.empty(out_shape, dtype=self.dtype)
        if all(out_shape):
            ranges = [
                range(a // c, (b - 1) // c + 1) for (a, b), c in zip(bounds, self.layout.chunks)
            ]
            for index in itertools.product(*ranges):
                region = self.layout.region(index)
                chunk = self.read_chunk(index)
                src, dst = [], []
                for (a, b), r in zip(bounds, region):
                    lo, hi = max(a, r.start), min(b, r.stop)
                    src.append(slice(lo - r.start, hi - r.start))
                    dst.append(slice(lo - a, hi - a))
                out[tuple(dst)] = chunk[tuple(src)]
        squeeze = tuple(i for i, k in enumerate(key) if not isinstance(k, slice))
        return out.squeeze(axis=squeeze) if squeeze else out

    def verify(self) -> list[str]:
        """Problems found reading every chunk (empty when the array is intact)."""
        problems = []
        for index in self.layout.indices():
            try:
                self.read_chunk(index)
            except CorruptObjectError as exc:
                problems.append(str(exc))
        return problems

    def to_dask(self) -> Any:
        import dask.array as da

        return da.from_array(
            self,
            chunks=self.layout.chunks,
            asarray=False,
            lock=False,
            meta=np.empty((0,) * self.ndim, dtype=self.dtype),
            name=f"physflow-{self.source.name}-{self.prefix}",
        )
