"""numpy arrays as zarr v3 arrays, written natively (raw chunk + ``zarr.json``) and hashed once.

zarr's own write path is several times slower than ``np.save`` for uncompressed data, so
uncompressed arrays are written here directly in zarr v3 layout: one chunk file holding the
C-order bytes and the metadata document. Any zarr v3 reader opens them. Reads memory-map the
chunk file and verify it against the digest recorded at write time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..pipeline.hashing import array_bytes_view, array_digest_from_parts, hash_array_bytes
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


def chunk_key(ndim: int) -> str:
    return "c/" + "/".join(["0"] * ndim) if ndim else "c"


def zarr_metadata(dtype: np.dtype, shape: tuple[int, ...], physflow: dict[str, Any]) -> dict:
    codec: dict[str, Any] = {"name": "bytes"}
    if dtype.itemsize > 1:
        codec["configuration"] = {"endian": _endian(dtype)}
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": ZARR_DATA_TYPES[f"{dtype.kind}{dtype.itemsize}"],
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": [max(1, n) for n in shape]},
        },
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": _fill_value(dtype),
        "codecs": [codec],
        "attributes": {"physflow": physflow},
    }


def array_digest(array: np.ndarray) -> tuple[str, bytes]:
    """(digest, blake3 of the C-order bytes) of an array, hashing it once."""
    array = np.ascontiguousarray(array)
    data_hash = hash_array_bytes(array_bytes_view(array))
    return array_digest_from_parts(array.dtype, array.shape, data_hash), data_hash


def write_array_dir(target: Path, array: np.ndarray, digest: str, data_hash: bytes) -> None:
    """Write the zarr v3 layout of ``array`` into the (temporary) directory ``target``."""
    array = np.ascontiguousarray(array)
    key = chunk_key(array.ndim)
    physflow = {"codec": "array", "digest": digest, "chunks": {}}
    if array.size:
        chunk_path = target / key
        chunk_path.parent.mkdir(parents=True, exist_ok=True)
        with open(chunk_path, "wb") as fh:
            fh.write(array_bytes_view(array))
        physflow["chunks"][key] = data_hash.hex()
    meta = zarr_metadata(array.dtype, array.shape, physflow)
    (target / "zarr.json").write_text(json.dumps(meta))


def read_meta(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())


def numpy_dtype(meta: dict) -> np.dtype:
    code = _NUMPY_FROM_ZARR[meta["data_type"]]
    dtype = np.dtype(code)
    for codec in meta["codecs"]:
        if codec["name"] == "bytes" and dtype.itemsize > 1:
            endian = codec.get("configuration", {}).get("endian", "little")
            dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    return dtype


def is_native_single_chunk(meta: dict) -> bool:
    chunk = meta["chunk_grid"]["configuration"]["chunk_shape"]
    return [c["name"] for c in meta["codecs"]] == ["bytes"] and all(
        c >= max(1, s) for c, s in zip(chunk, meta["shape"])
    )


def read_array_dir(path: Path, meta: dict, verify: bool = True) -> np.ndarray:
    """Memory-map a native single-chunk array (copy-on-write), verifying its bytes."""
    dtype = numpy_dtype(meta)
    shape = tuple(meta["shape"])
    physflow = meta["attributes"]["physflow"]
    if not all(shape):
        return np.zeros(shape, dtype=dtype)
    key = chunk_key(len(shape))
    chunk_path = path / key
    expected_bytes = int(np.prod(shape)) * dtype.itemsize
    try:
        size = os.path.getsize(chunk_path)
    except FileNotFoundError:
        raise CorruptObjectError(f"object {path.name}: chunk {key} is missing") from None
    if size != expected_bytes:
        raise CorruptObjectError(
            f"object {path.name}: chunk {key} has {size} bytes, expected {expected_bytes}"
        )
    array = np.memmap(chunk_path, dtype=dtype, mode="c", shape=shape).view(np.ndarray)
    if verify and hash_array_bytes(array_bytes_view(array)).hex() != physflow["chunks"][key]:
        raise CorruptObjectError(
            f"object {physflow['digest']} ({path}): chunk {key} does not match its digest; "
            "it will not be served. Run 'physflow cache verify' to quarantine it."
        )
    return array
