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

from .array_read import ArrayReader, Source, decode_chunk
from .array_write import (
    ChunkedWriter,
    array_digest,
    write_array_dir,
    write_chunked,
    write_hashed,
)
from .zarr_meta import (
    CHUNK_BYTES,
    META,
    ZARR_DATA_TYPES,
    Layout,
    c_order,
    default_chunks,
    is_compressed,
    layout_check,
    numpy_dtype,
    zarr_metadata,
    zarr_supports,
)

__all__ = [
    "CHUNK_BYTES",
    "META",
    "ZARR_DATA_TYPES",
    "ArrayReader",
    "ChunkedWriter",
    "Layout",
    "Source",
    "array_digest",
    "c_order",
    "decode_chunk",
    "default_chunks",
    "is_compressed",
    "layout_check",
    "numpy_dtype",
    "write_array_dir",
    "write_chunked",
    "write_hashed",
    "zarr_metadata",
    "zarr_supports",
]
