"""The built-in codecs: numpy arrays (zarr v3 objects; dtypes zarr v3 lacks are stored as raw
bytes with the numpy dtype in the metadata), large ``bytes`` (blobs) and opt-in pickle."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.array_rules import array_digest_from_parts, bytes_digest_from_hash
from ..core.framing import merkle
from . import arrays
from .arrays import c_order as _c_order
from .codec_types import Codec, WriteOptions
from .errors import PickleNotAllowedError

if TYPE_CHECKING:
    from .store import Store


def dtype_to_json(dtype: np.dtype) -> Any:
    return np.lib.format.dtype_to_descr(dtype)


def dtype_from_json(descr: Any) -> np.dtype:
    def fix(d: Any) -> Any:
        if isinstance(d, list):
            return [tuple(fix(x) for x in item) if isinstance(item, list) else item for item in d]
        return d

    return np.lib.format.descr_to_dtype(fix(descr))


def write_array(
    store: Store, sink: Any, prefix: str, array: np.ndarray, compress: bool, **kwargs: Any
) -> tuple[str, dict]:
    """Write any numpy array into ``sink`` under ``prefix``; returns (digest, zarr metadata)."""
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise TypeError(
            "numpy arrays of dtype object cannot be stored (their bytes are pointers); "
            "use a numeric, bool, string or structured dtype"
        )
    if arrays.zarr_supports(array.dtype):
        return arrays.write_chunked(sink, prefix, array, compress=compress, **kwargs)
    # No zarr v3 type: store the raw C-order bytes, keeping the numpy dtype in the metadata.
    flat = _c_order(array).reshape(-1).view(np.uint8)
    extra = {"numpy_dtype": dtype_to_json(array.dtype), "numpy_shape": list(array.shape)}
    kwargs.setdefault("physflow_extra", {}).update(extra)
    if kwargs.get("dimension_names") is not None:  # the raw bytes have their own, flat axis
        kwargs["dimension_names"] = [f"__physflow_bytes_{prefix or 'value'}"]
    return arrays.write_chunked(
        sink,
        prefix,
        flat,
        compress=compress,
        digest_fn=lambda h: array_digest_from_parts(array.dtype, array.shape, h),
        **kwargs,
    )


def read_array(reader: arrays.ArrayReader, lazy: bool = False) -> Any:
    """The array a reader describes, verified (a dask array when ``lazy``)."""
    extra = reader.physflow
    if "numpy_dtype" in extra:
        raw = reader.read_all()
        dtype = dtype_from_json(extra["numpy_dtype"])
        return raw.view(dtype).reshape(extra["numpy_shape"])
    if lazy:
        return reader.to_dask()
    return reader.read_all()


def _encode_array(store: Store, value: np.ndarray, opts: WriteOptions, store_leaf: Any) -> list:
    return ["o", "array", store.put_array_object(value, opts.compress)]


def _decode_array(store: Store, ref: list, lazy: bool = False) -> Any:
    return read_array(store.array_reader(ref[2]), lazy=lazy)


# -- bytes and pickle ----------------------------------------------------------------------------


def _put_bytes(store: Store, data: bytes, opts: WriteOptions, codec: str) -> str:
    array = np.frombuffer(data, dtype=np.uint8)
    n = len(data)
    return store.put_array_object(
        array, opts.compress, codec=codec, digest_fn=lambda h: bytes_digest_from_hash(n, h)
    )


def _encode_blob(store: Store, value: bytes, opts: WriteOptions, store_leaf: Any) -> list:
    return ["o", "blob", _put_bytes(store, bytes(value), opts, "blob")]


def _decode_blob(store: Store, ref: list, lazy: bool = False) -> bytes:
    return store.array_reader(ref[2]).read_all().tobytes()


def pickle_value(store: Store, value: Any, opts: WriteOptions) -> list:
    """Pickle ``value`` into a blob object (the caller checked the stage allows it)."""
    data = pickle.dumps(value, protocol=5)
    opts.unsafe = True
    return ["o", "pickle", _put_bytes(store, data, opts, "pickle")]


def pickled_digest(ref: list) -> str:
    """The digest of a pickled value: derived from its pickle bytes (a miss, never a false hit,
    if pickling is not deterministic)."""
    return merkle("pickle", ref[2])


def _decode_pickle(store: Store, ref: list, lazy: bool = False) -> Any:
    if not store.allow_pickle:
        raise PickleNotAllowedError(
            f"object {ref[2]} was stored with pickle (unsafe: unpickling runs code); open the "
            "store with Store(path, allow_pickle=True) if you trust whoever wrote it"
        )
    data = store.array_reader(ref[2]).read_all().tobytes()
    return pickle.loads(data)


BUILTIN_CODECS = (
    Codec("array", lambda v: isinstance(v, np.ndarray), _encode_array, _decode_array),
    Codec("blob", lambda v: type(v) is bytes, _encode_blob, _decode_blob),
    Codec("pickle", lambda v: True, lambda *a: pickle_value(a[0], a[1], a[2]), _decode_pickle),
)
