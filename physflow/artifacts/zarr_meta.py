"""zarr v3 array metadata as physflow writes it: data types, chunk layout, codecs, and the
check that binds the metadata to the digests it records."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from typing import Any

import blake3
import numpy as np

from ..core.array_rules import c_order as core_c_order
from ..core.digest_registry import hash_array_bytes

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


c_order = _c_order = core_c_order


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


def meta_check(meta: dict) -> str:
    """A digest of a whole ``zarr.json`` document (bound to the value digest it records), so a
    changed byte anywhere in it -- names, dims, units, attributes -- is detected, not obeyed."""
    physflow = dict(meta["attributes"]["physflow"])
    physflow.pop("meta_check", None)
    doc = {**meta, "attributes": {**meta["attributes"], "physflow": physflow}}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return blake3.blake3(f"{physflow['digest']}\n{text}".encode()).hexdigest()[:32]


def seal(meta: dict) -> dict:
    """Record :func:`meta_check` in the document (the last thing a writer does to it)."""
    meta["attributes"]["physflow"]["meta_check"] = meta_check(meta)
    return meta


def _zstd() -> Any:
    from numcodecs.zstd import Zstd

    return Zstd(level=ZSTD_LEVEL)


def _hash_hex(data: Any) -> str:
    return hash_array_bytes(data).hex()
