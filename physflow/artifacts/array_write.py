"""Writing numpy arrays as zarr v3 objects natively (chunk files + ``zarr.json``), hashing the
bytes once while they are written (see :mod:`.arrays`)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.array_rules import array_bytes_view, array_digest_from_parts
from ..core.digest_registry import hash_array_bytes, new_hasher
from .array_read import decode_chunk
from .backend import Sink
from .hashed_write import update_all, write_hashed
from .zarr_meta import (
    META,
    Layout,
    _c_order,
    _zstd,
    default_chunks,
    layout_check,
    seal,
    zarr_metadata,
    zarr_supports,
)


def array_digest(array: np.ndarray) -> tuple[str, bytes]:
    """(digest, blake3 of the C-order bytes) of an array, hashing it once."""
    array = _c_order(array)
    data_hash = hash_array_bytes(array_bytes_view(array))
    return array_digest_from_parts(array.dtype, array.shape, data_hash), data_hash


def write_array_dir(
    target: Path, array: np.ndarray, digest: str | None = None, data_hash: bytes | None = None
) -> tuple[str, bytes]:
    """Write ``array`` as a native single-chunk zarr v3 array into the local temp dir ``target``.

    The bytes are hashed in a thread while they are written (unless ``data_hash`` is given), so
    storing costs about one write. Returns (digest, blake3 of the bytes).
    """
    array = _c_order(array)
    key = Layout.key((0,) * array.ndim)
    view = array_bytes_view(array)
    if array.size:
        chunk_path = target / key
        chunk_path.parent.mkdir(parents=True, exist_ok=True)
        if data_hash is None:
            hasher = new_hasher()
            write_hashed(str(chunk_path), view, [hasher])
            data_hash = hasher.digest()
        else:
            write_hashed(str(chunk_path), view, [])
    elif data_hash is None:
        data_hash = hash_array_bytes(view)
    if digest is None:
        digest = array_digest_from_parts(array.dtype, array.shape, data_hash)
    chunks = {key: data_hash.hex()} if array.size else {}
    physflow = {"codec": "array", "digest": digest, "chunks": chunks}
    meta = zarr_metadata(
        array.dtype, array.shape, tuple(max(1, n) for n in array.shape), False, physflow
    )
    physflow["check"] = layout_check(meta)
    (target / META).write_text(json.dumps(seal(meta)))
    return digest, data_hash


DigestFn = Callable[[bytes], str]


class ChunkedWriter:
    """Writes one zarr v3 array chunk by chunk into a sink, hashing while it streams.

    Chunks written in C order on a slab layout feed an incremental blake3 of the value as they
    arrive; otherwise the value hash is computed at :meth:`finish` by reading the chunks back one
    slab at a time. Either way the digest equals ``pf.digest`` of the whole array.
    """

    def __init__(
        self,
        sink: Sink,
        prefix: str,
        shape: tuple[int, ...],
        dtype: np.dtype,
        chunks: tuple[int, ...] | None = None,
        *,
        compress: bool = False,
        digest_fn: DigestFn | None = None,
        codec: str = "array",
        attributes: dict[str, Any] | None = None,
        physflow_extra: dict[str, Any] | None = None,
        dimension_names: list[str] | None = None,
    ) -> None:
        self.dtype = np.dtype(dtype)
        if not zarr_supports(self.dtype):
            raise TypeError(f"dtype {self.dtype} has no native zarr v3 encoding")
        shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise ValueError(f"negative dimension in shape {shape}")
        if chunks is None:
            chunks = default_chunks(shape, self.dtype.itemsize)
        self.layout = Layout(shape, tuple(chunks))
        self.sink = sink
        self.prefix = prefix
        self.compress = compress
        self.codec = codec
        self.attributes = attributes
        self.physflow_extra = physflow_extra or {}
        self.dimension_names = dimension_names
        self.digest_fn = digest_fn or (lambda h: array_digest_from_parts(self.dtype, shape, h))
        self.chunk_hashes: dict[str, str] = {}
        self._hasher: Any = new_hasher()
        self._in_order = self.layout.slabs
        self._next = 0
        self._order = (
            {idx: n for n, idx in enumerate(self.layout.indices())}
            if (self.layout.nchunks <= 1_000_000)
            else None
        )
        self._zstd = _zstd() if compress else None
        self.data_hash: bytes | None = None
        self.digest: str | None = None

    def _rel(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def index_of(self, key: Any) -> tuple[int, ...]:
        """The chunk index that a tuple of slices selects exactly (chunk-aligned writes only)."""
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) < len(self.layout.shape):
            key = key + (slice(None),) * (len(self.layout.shape) - len(key))
        index = []
        for axis, (k, c, s) in enumerate(zip(key, self.layout.chunks, self.layout.shape)):
            start, stop, step = (k if isinstance(k, slice) else slice(k, k + 1)).indices(s)
            if step != 1 or start % c or stop != min(start + c, s):
                raise IndexError(
                    f"writes must cover exactly one chunk: axis {axis} got {start}:{stop} but "
                    f"chunks there are {c} long (use writer.write_chunk(index, block) or slices "
                    f"like [{c}*i:{c}*(i+1)])"
                )
            index.append(start // c)
        return tuple(index)

    def __setitem__(self, key: Any, block: Any) -> None:
        self.write_chunk(self.index_of(key), block)

    def write_chunk(self, index: tuple[int, ...], block: Any) -> None:
        index = tuple(int(i) for i in index)
        if len(index) != len(self.layout.shape) or any(
            not 0 <= i < n for i, n in zip(index, self.layout.grid)
        ):
            raise IndexError(f"chunk index {index} is outside the chunk grid {self.layout.grid}")
        key = Layout.key(index)
        if key in self.chunk_hashes:
            raise ValueError(f"chunk {index} was already written; chunks are written once")
        want = self.layout.region_shape(index)
        block = np.asarray(block)
        if block.shape != want:
            block = np.broadcast_to(block, want) if block.size == 1 else block
            if block.shape != want:
                raise ValueError(f"chunk {index} must have shape {want}, got {block.shape}")
        block = np.asarray(block, dtype=self.dtype, order="C")
        hashers: list[Any] = []
        if self._in_order:
            if self._order is not None and self._order[index] == self._next:
                self._next += 1
                hashers.append(self._hasher)
            else:
                self._in_order = False
        full = tuple(self.layout.chunks)
        if block.shape != full:  # edge chunk: zarr v3 stores full chunks, padded
            update_all(hashers, array_bytes_view(block))
            hashers = []
            padded = np.zeros(full, dtype=self.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        data: Any = array_bytes_view(block)
        if self._zstd is not None:
            update_all(hashers, data)
            data = self._zstd.encode(data)
            hashers = []
        chunk_hasher = new_hasher()
        self.sink.write_hashed(self._rel(key), data, [*hashers, chunk_hasher])
        self.chunk_hashes[key] = chunk_hasher.hexdigest()

    def _read_region(self, index: tuple[int, ...]) -> np.ndarray:
        data = self.sink.read(self._rel(Layout.key(index)))
        return decode_chunk(data, self.dtype, self.layout, index, self._zstd is not None)

    def _hash_by_reading_back(self) -> bytes:
        """Value hash from chunks already written, one slab of chunk rows at a time."""
        hasher = new_hasher()
        layout = self.layout
        if not layout.shape:
            return hash_array_bytes(array_bytes_view(self._read_region(())))
        rest = list(itertools.product(*(range(n) for n in layout.grid[1:])))
        for i0 in range(layout.grid[0]):
            rows = layout.region((i0, *([0] * (len(layout.shape) - 1))))[0]
            slab = np.empty((rows.stop - rows.start, *layout.shape[1:]), dtype=self.dtype)
            for other in rest:
                index = (i0, *other)
                region = layout.region(index)
                slab[(slice(None), *region[1:])] = self._read_region(index)
            hasher.update(array_bytes_view(slab))
        return hasher.digest()

    def finish(self) -> tuple[str, dict]:
        """Check every chunk was written, compute the digest and write ``zarr.json``."""
        missing = self.layout.nchunks - len(self.chunk_hashes)
        if missing:
            absent = next(
                i for i in self.layout.indices() if Layout.key(i) not in self.chunk_hashes
            )
            raise ValueError(
                f"{missing} of {self.layout.nchunks} chunks were never written (first missing: "
                f"{absent}); write every chunk before the stage returns"
            )
        lost = [k for k in self.chunk_hashes if not self.sink.has(self._rel(k))]
        if lost:
            raise ValueError(
                f"{len(lost)} written chunk file(s) vanished from the temp entry (first: "
                f"{lost[0]}; removed by a concurrent gc?); the output was not stored"
            )
        if self.layout.size == 0:
            self.data_hash = hash_array_bytes(b"")
        elif self._in_order and self._next == self.layout.nchunks:
            self.data_hash = self._hasher.digest()
        else:
            self.data_hash = self._hash_by_reading_back()
        self.digest = self.digest_fn(self.data_hash)
        physflow = {
            "codec": self.codec,
            "digest": self.digest,
            "chunks": self.chunk_hashes,
            **self.physflow_extra,
        }
        meta = zarr_metadata(
            self.dtype,
            self.layout.shape,
            self.layout.chunks,
            self._zstd is not None,
            physflow,
            self.attributes,
            self.dimension_names,
        )
        physflow["check"] = layout_check(meta)
        self.sink.write(self._rel(META), json.dumps(seal(meta)).encode())
        return self.digest, meta


def write_chunked(
    sink: Sink, prefix: str, array: np.ndarray, *, compress: bool, **kwargs: Any
) -> tuple[str, dict]:
    """Write an in-memory array through :class:`ChunkedWriter` (slabs, in order)."""
    array = np.asarray(array)
    writer = ChunkedWriter(sink, prefix, array.shape, array.dtype, compress=compress, **kwargs)
    for index in writer.layout.indices():
        writer.write_chunk(index, array[writer.layout.region(index)])
    return writer.finish()
