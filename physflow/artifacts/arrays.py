"""numpy arrays as zarr v3 arrays, written natively (chunk files + ``zarr.json``), hashed once.

zarr's own write path is several times slower than ``np.save`` for uncompressed data, so arrays
are written here directly in zarr v3 layout: chunk files holding C-order bytes (optionally zstd
frames, the zarr v3 ``zstd`` codec) and the metadata document, whose
``attributes.physflow`` holds the value digest and a blake3 digest of every stored chunk file.
Any zarr v3 reader (zarr, xarray, dask) opens them; physflow's readers verify each chunk they
read, so a corrupted byte is detected and never served.

The value digest is ``pf.digest(array)``: header (dtype, shape) + blake3 of the C-order bytes, so
it does not depend on chunking or compression.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import numpy as np

from ..core.array_rules import array_bytes_view, array_digest_from_parts
from ..core.digest_registry import hash_array_bytes
from .backend import Sink
from .errors import CorruptObjectError

ZARR_DATA_TYPES = {
    "b1": "bool",
    "i1": "int8",
    "i2": "int16",
    "i4": "int32",
    "i8": "int64",
    "u1": "uint8",
    "u2": "uint16",
    "u4": "uint32",
    "u8": "uint64",
    "f2": "float16",
    "f4": "float32",
    "f8": "float64",
    "c8": "complex64",
    "c16": "complex128",
}
_NUMPY_FROM_ZARR = {v: k for k, v in ZARR_DATA_TYPES.items()}
#: Target chunk size of compressed (and default chunked) arrays.
CHUNK_BYTES = 16 << 20
ZSTD_LEVEL = 3
META = "zarr.json"


def _c_order(array: Any) -> np.ndarray:
    """C-contiguous without promoting 0-d arrays to 1-d (unlike ``np.ascontiguousarray``)."""
    return np.asarray(array, order="C")


c_order = _c_order


def zarr_supports(dtype: np.dtype) -> bool:
    return dtype.fields is None and f"{dtype.kind}{dtype.itemsize}" in ZARR_DATA_TYPES


def _fill_value(dtype: np.dtype) -> Any:
    if dtype.kind == "b":
        return False
    if dtype.kind == "c":
        return [0.0, 0.0]
    if dtype.kind == "f":
        return 0.0
    return 0


def _endian(dtype: np.dtype) -> str:
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and not np.little_endian):
        return "big"
    return "little"


class Layout:
    """A regular chunk grid over an array shape, with zarr v3 default chunk keys."""

    def __init__(self, shape: tuple[int, ...], chunks: tuple[int, ...]) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.chunks = tuple(max(1, int(c)) for c in chunks)
        if len(self.chunks) != len(self.shape):
            raise ValueError(f"chunks {chunks} do not match shape {shape}")
        self.grid = tuple(math.ceil(s / c) for s, c in zip(self.shape, self.chunks))
        self.size = math.prod(self.shape)

    @property
    def nchunks(self) -> int:
        return math.prod(self.grid)

    def indices(self) -> Iterator[tuple[int, ...]]:
        return itertools.product(*(range(n) for n in self.grid))

    @staticmethod
    def key(index: tuple[int, ...]) -> str:
        return "c" + "".join(f"/{i}" for i in index)

    def region(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(
            slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, self.chunks, self.shape)
        )

    def region_shape(self, index: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(r.stop - r.start for r in self.region(index))

    @property
    def slabs(self) -> bool:
        """Whether every chunk is a contiguous slab of the C-order bytes (split on axis 0 only)."""
        return self.chunks[1:] == tuple(max(1, s) for s in self.shape[1:])


def default_chunks(shape: tuple[int, ...], itemsize: int, target: int = CHUNK_BYTES) -> tuple:
    """Slabs along axis 0 of about ``target`` bytes (whole array when smaller)."""
    if not shape:
        return ()
    row = itemsize * math.prod(max(1, s) for s in shape[1:])
    rows = max(1, target // max(1, row))
    return (min(max(1, shape[0]), rows), *(max(1, s) for s in shape[1:]))


def zarr_metadata(
    dtype: np.dtype,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    compressed: bool,
    physflow: dict[str, Any],
    attributes: dict[str, Any] | None = None,
    dimension_names: list[str] | None = None,
) -> dict:
    codec: dict[str, Any] = {"name": "bytes"}
    if dtype.itemsize > 1:
        codec["configuration"] = {"endian": _endian(dtype)}
    codecs = [codec]
    if compressed:
        codecs.append({"name": "zstd", "configuration": {"level": ZSTD_LEVEL, "checksum": False}})
    meta: dict[str, Any] = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": ZARR_DATA_TYPES[f"{dtype.kind}{dtype.itemsize}"],
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": _fill_value(dtype),
        "codecs": codecs,
        "attributes": {**(attributes or {}), "physflow": physflow},
    }
    if dimension_names is not None:
        meta["dimension_names"] = list(dimension_names)
    return meta


def numpy_dtype(meta: dict) -> np.dtype:
    dtype = np.dtype(_NUMPY_FROM_ZARR[meta["data_type"]])
    for codec in meta["codecs"]:
        if codec["name"] == "bytes" and dtype.itemsize > 1:
            endian = codec.get("configuration", {}).get("endian", "little")
            dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    return dtype


def is_compressed(meta: dict) -> bool:
    return any(c["name"] == "zstd" for c in meta["codecs"])


def layout_check(meta: dict) -> str:
    """A digest of everything that decides how chunk bytes become values (dtype, shape, chunking,
    codecs, chunk digests, value digest): a changed metadata byte is detected, not obeyed."""
    physflow = meta["attributes"]["physflow"]
    fields = [
        meta["data_type"],
        meta["shape"],
        meta["chunk_grid"],
        meta["codecs"],
        sorted(physflow["chunks"].items()),
        physflow["digest"],
        physflow.get("codec"),
        physflow.get("numpy_dtype"),
        physflow.get("numpy_shape"),
    ]
    return blake3.blake3(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def _zstd() -> Any:
    from numcodecs.zstd import Zstd

    return Zstd(level=ZSTD_LEVEL)


def _hash_hex(data: Any) -> str:
    return hash_array_bytes(data).hex()


# -- writing -------------------------------------------------------------------------------------


def array_digest(array: np.ndarray) -> tuple[str, bytes]:
    """(digest, blake3 of the C-order bytes) of an array, hashing it once."""
    array = _c_order(array)
    data_hash = hash_array_bytes(array_bytes_view(array))
    return array_digest_from_parts(array.dtype, array.shape, data_hash), data_hash


#: Large buffers are written in pieces of this size, each hashed in a helper thread while the
#: next one is written, so storing costs about one write rather than a write plus a hash.
PIECE_BYTES = 1 << 20
_POOL: Any = None


def _hash_pool() -> Any:
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(2, thread_name_prefix="physflow-hash")
    return _POOL


def _reset_pool() -> None:  # a forked child must not reuse the parent's threads
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_reset_pool)


def _update_all(hashers: list[Any], piece: memoryview) -> None:
    for hasher in hashers:
        hasher.update(piece)


def _preallocate(fh: Any, n: int) -> None:
    """Reserve the file's blocks in one go (as ``ndarray.tofile`` does): ~30% faster writes."""
    if n >= (1 << 20) and hasattr(os, "posix_fallocate"):
        with contextlib.suppress(OSError):  # unsupported here: plain writes still work
            os.posix_fallocate(fh.fileno(), 0, n)


def _write_all(fh: Any, view: memoryview) -> None:
    written = 0
    while written < view.nbytes:
        written += fh.write(view[written:])


def write_hashed(path: str, data: Any, hashers: list[Any]) -> None:
    """Write ``data`` to ``path`` and feed the same bytes to every blake3 ``hashers``.

    Large buffers are written in pieces while a helper thread hashes everything written so far;
    once the writer is done, whatever is left is hashed in one call (multithreaded for hashers
    made with ``max_threads=AUTO``). Storing then costs about max(write, hash), not their sum.
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    n = view.nbytes
    if n < 4 * PIECE_BYTES or not hashers:
        with open(path, "wb", buffering=0) as fh:
            _preallocate(fh, n)
            _write_all(fh, view)
        _update_all(hashers, view)
        return
    cond = threading.Condition()
    progress = {"written": 0, "done": False}

    def hash_behind() -> None:
        hashed = 0
        while True:
            with cond:
                while progress["written"] == hashed and not progress["done"]:
                    cond.wait()
                upto = progress["written"]
                if upto == hashed:
                    return
            _update_all(hashers, view[hashed:upto])
            hashed = upto

    future = _hash_pool().submit(hash_behind)
    try:
        with open(path, "wb", buffering=0) as fh:
            _preallocate(fh, n)
            for start in range(0, n, PIECE_BYTES):
                piece = view[start : start + PIECE_BYTES]
                _write_all(fh, piece)
                with cond:
                    progress["written"] = start + piece.nbytes
                    cond.notify()
    finally:
        with cond:
            progress["done"] = True
            cond.notify()
        future.result()


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
            hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
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
    (target / META).write_text(json.dumps(meta))
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
        self._hasher: Any = blake3.blake3(max_threads=blake3.blake3.AUTO)
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
            _update_all(hashers, array_bytes_view(block))
            hashers = []
            padded = np.zeros(full, dtype=self.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        data: Any = array_bytes_view(block)
        if self._zstd is not None:
            _update_all(hashers, data)
            data = self._zstd.encode(data)
            hashers = []
        chunk_hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        self.sink.write_hashed(self._rel(key), data, [*hashers, chunk_hasher])
        self.chunk_hashes[key] = chunk_hasher.hexdigest()

    def _read_region(self, index: tuple[int, ...]) -> np.ndarray:
        data = self.sink.read(self._rel(Layout.key(index)))
        return decode_chunk(data, self.dtype, self.layout, index, self._zstd is not None)

    def _hash_by_reading_back(self) -> bytes:
        """Value hash from chunks already written, one slab of chunk rows at a time."""
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
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
        self.sink.write(self._rel(META), json.dumps(meta).encode())
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


# -- reading -------------------------------------------------------------------------------------


class Source:
    """Read access to one stored object directory (local or fsspec)."""

    def __init__(self, backend: Any, rel: str, name: str) -> None:
        self.backend = backend
        self.rel = rel
        self.name = name  # the object digest, for error messages

    def read(self, key: str) -> bytes:
        try:
            return self.backend.read(f"{self.rel}/{key}")
        except FileNotFoundError:
            raise CorruptObjectError(
                f"object {self.name}: file {key} is missing", digest=self.name
            ) from None

    def local_path(self, key: str) -> str | None:
        return self.backend.local_path(f"{self.rel}/{key}")

    def meta(self, prefix: str = "") -> dict:
        key = f"{prefix}/{META}" if prefix else META
        try:
            return json.loads(self.read(key))
        except (ValueError, UnicodeDecodeError):
            raise CorruptObjectError(
                f"object {self.name}: {key} is not valid JSON", digest=self.name
            ) from None


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
            raise CorruptObjectError(
                f"object {source.name}: metadata {prefix or '.'}/{META} is malformed ({exc})",
                digest=source.name,
            ) from None
        self.shape = self.layout.shape
        self.ndim = len(self.shape)

    def _key(self, index: tuple[int, ...]) -> str:
        key = Layout.key(index)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _corrupt(self, key: str, why: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"object {self.source.name}: chunk {key} {why}; it will not be served. "
            "Run 'physflow cache verify' to quarantine it (a pipeline run recomputes it).",
            digest=self.source.name,
        )

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
        if path is None:
            return None
        key = Layout.key(index)
        expected_bytes = self.layout.size * self.dtype.itemsize
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            raise self._corrupt(key, "is missing") from None
        if size != expected_bytes:
            raise self._corrupt(key, f"has {size} bytes, expected {expected_bytes}")
        array = np.memmap(path, dtype=self.dtype, mode="c", shape=self.shape).view(np.ndarray)
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
