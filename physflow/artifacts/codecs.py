"""The codec registry: for each value type, how it is digested, written and read back.

Every codec owns three things: a digest rule (registered with :mod:`physflow.pipeline.hashing`,
lazily for optional libraries), an encoder (value -> tree, writing objects through the store) and
a decoder (tree -> value, verifying what it reads). Built in:

- ``array``: numpy arrays larger than the inline limit, as zarr v3 arrays (any dtype; dtypes zarr
  v3 has no native type for -- strings, datetimes, structured -- are stored as their raw bytes
  with the numpy dtype in the metadata);
- ``blob``: large ``bytes`` (a uint8 zarr array);
- ``xarray``: ``DataArray`` / ``Dataset`` as a zarr group (see :mod:`.xarray_codec`);
- ``torch`` / ``jax`` / ``cupy``: tensors stored via host numpy, restored to their own type and
  dtype (see :mod:`.tensors`);
- ``pickle``: anything else, only for stages declared with ``@pf.stage(pickle=True)``; such
  values are marked unsafe and only loaded by a store opened with ``allow_pickle=True``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.array_rules import array_digest_from_parts, bytes_digest_from_hash
from ..core.framing import merkle
from . import arrays
from .arrays import c_order as _c_order
from .errors import PickleNotAllowedError

if TYPE_CHECKING:
    from .store import Store


@dataclass
class WriteOptions:
    """Per-value options: whether to compress and whether pickle is allowed."""

    compress: bool = False
    allow_pickle: bool = False
    unsafe: bool = False  # set when a leaf was pickled


@dataclass(frozen=True)
class Codec:
    """A named codec. ``encode(store, value, opts, store_leaf)`` returns the value's tree;
    ``decode(store, ref, lazy)`` returns the value (``ref`` is the tree node)."""

    name: str
    matches: Callable[[Any], bool]
    encode: Callable[..., list]
    decode: Callable[..., Any]


_CODECS: dict[str, Codec] = {}
#: Codecs for optional libraries, found by the top-level module of a value's type.
_BY_MODULE: dict[str, str] = {}


def register_codec(codec: Codec, modules: tuple[str, ...] = ()) -> Codec:
    _CODECS[codec.name] = codec
    for module in modules:
        _BY_MODULE[module] = codec.name
    return codec


def codec_named(name: str) -> Codec:
    _ensure_builtin()
    try:
        return _CODECS[name]
    except KeyError:
        raise KeyError(
            f"no codec named {name!r} (stored by a newer physflow, or a plugin not imported?)"
        ) from None


def find_codec(value: Any) -> Codec | None:
    """The codec for ``value``, importing optional codec modules only when their type shows up."""
    _ensure_builtin()
    if type(value) in (np.ndarray, np.memmap):  # subclasses (masked arrays...) would lose data
        return _CODECS["array"]
    if type(value) is bytes:  # bytearray / subclasses would come back as plain bytes
        return _CODECS["blob"]
    module = type(value).__module__.split(".")[0]
    name = _BY_MODULE.get(module)
    if name is not None:
        codec = _CODECS[name]
        if codec.matches(value):
            return codec
    return None


_LOADED = False


def _ensure_builtin() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from . import tensors, xarray_codec

    xarray_codec.register()
    tensors.register()


# -- arrays ------------------------------------------------------------------------------------


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


register_codec(Codec("array", lambda v: isinstance(v, np.ndarray), _encode_array, _decode_array))
register_codec(Codec("blob", lambda v: type(v) is bytes, _encode_blob, _decode_blob))
register_codec(
    Codec("pickle", lambda v: True, lambda *a: pickle_value(a[0], a[1], a[2]), _decode_pickle)
)
