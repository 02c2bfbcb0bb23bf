"""Values <-> the store: encode a value as a tagged tree whose large leaves are objects, and
decode it back, verifying what is read. Types without a codec are refused (pickle only when the
stage opted in, and loaded only by a store opened with ``allow_pickle=True``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ..core.framing import merkle
from ..core.hashing import UnhashableValueError, digest_with_memo
from ..core.records import OutputEntry
from . import arrays
from .arrays import c_order as _c_order
from .backend import Sink
from .codecs import WriteOptions, codec_named, find_codec, pickle_value, pickled_digest
from .errors import PickleNotAllowedError
from .inline import UnsupportedValueError, from_tree, to_tree, tree_objects

if TYPE_CHECKING:
    from .store import Store


def put_value(
    store: Store, value: Any, *, allow_pickle: bool = False, compress: bool | None = None
) -> OutputEntry:
    """Store a value (large leaves as objects) and describe it as an :class:`OutputEntry`.

    Types without a codec raise :class:`UnsupportedValueError` unless ``allow_pickle``.
    """
    opts = WriteOptions(
        compress=store.compress if compress is None else compress, allow_pickle=allow_pickle
    )
    memo: dict[int, bytes] = {}  # id(array) -> blake3 of its bytes, hashed while writing
    # Keeps every leaf alive until the digest is taken: a temporary (a tensor's host array)
    # freed early would let another array reuse its id and be digested by its hash.
    alive: list[Any] = []

    def store_leaf(leaf: Any) -> list | None:
        alive.append(leaf)
        codec = find_codec(leaf)
        if codec is None:
            if allow_pickle:
                return pickle_value(store, leaf, opts)
            return None
        if codec.name == "array":
            if leaf.dtype.hasobject:
                if allow_pickle:
                    return pickle_value(store, leaf, opts)
                raise UnsupportedValueError(
                    "numpy arrays of dtype object have no codec (their bytes are pointers); "
                    "use a numeric, string or structured dtype, or declare the stage with "
                    "@pf.stage(pickle=True)"
                )
            return ["o", "array", store.put_array_object(leaf, opts.compress, memo=memo)]
        return codec.encode(store, leaf, opts, store_leaf)

    tree = to_tree(value, store_leaf)
    if tree[0] == "o" and tree[1] == "pickle":
        d = pickled_digest(tree)
    else:
        try:
            d = digest_with_memo(value, memo)
        except UnhashableValueError:
            if not opts.unsafe:
                raise
            # a container holding pickled leaves: digest its stored tree instead
            d = merkle("tree", msgspec.msgpack.encode(tree))
    shape = dtype = None
    nbytes = 0
    if isinstance(value, np.ndarray):
        dtype, shape, nbytes = value.dtype.str, tuple(value.shape), int(value.nbytes)
    elif isinstance(value, bytes):
        nbytes = len(value)
    elif tree[0] == "x" and hasattr(value, "shape"):
        shape = tuple(int(n) for n in value.shape)
        dtype = str(tree[2].get("dtype"))
    return OutputEntry(
        digest=d,
        tree=tree,
        objects=tuple(tree_objects(tree)),
        type_name=f"{type(value).__module__}.{type(value).__qualname__}",
        dtype=dtype,
        shape=shape,
        nbytes=nbytes,
        unsafe=opts.unsafe,
    )


def get_value(store: Store, entry: OutputEntry) -> Any:
    """Load a stored value, verifying every chunk it reads.

    Arrays come back as numpy arrays (memory-mapped when stored uncompressed in one local
    chunk, otherwise read chunk by chunk); xarray values come back backed by verified dask
    arrays. Corrupted objects raise :class:`CorruptObjectError` (never a wrong value).
    """
    if entry.unsafe and not store.allow_pickle:
        raise PickleNotAllowedError(
            f"value {entry.digest} was stored with pickle (unsafe: unpickling runs code); "
            "open the store with Store(path, allow_pickle=True) if you trust whoever wrote it"
        )
    return from_tree(entry.tree, lambda ref: _load_leaf(store, ref))


def _load_leaf(store: Store, ref: list) -> Any:
    return codec_named(ref[1]).decode(store, ref)


#: In-memory arrays below this size are hashed before writing (so an existing object is not
#: rewritten); larger ones are hashed in a thread while they are written.
HASH_FIRST_BYTES = 8 << 20


def put_array_object(
    store: Store,
    array: np.ndarray,
    compress: bool,
    codec: str,
    digest_fn: Callable[[bytes], str] | None,
    memo: dict[int, bytes] | None,
) -> str:
    """Store a numpy array as a zarr v3 object; returns its digest (= ``pf.digest(array)``
    for the array codec)."""
    plain = codec == "array" and digest_fn is None
    if store.is_local and plain and not compress and arrays.zarr_supports(array.dtype):
        return _put_native_local(store, array, memo)
    from .codecs import write_array

    def write(sink: Sink) -> str:
        kwargs: dict[str, Any] = {"codec": codec}
        if digest_fn is not None:
            kwargs["digest_fn"] = digest_fn
        d, _meta = write_array(store, sink, "", array, compress, **kwargs)
        return d

    return store.write_object(write)


def _put_native_local(store: Store, array: np.ndarray, memo: dict[int, bytes] | None) -> str:
    original = array
    array = _c_order(array)
    digest = data_hash = None
    if array.nbytes < HASH_FIRST_BYTES:
        digest, data_hash = arrays.array_digest(array)
        if store.has_object(digest):
            if memo is not None:
                memo[id(original)] = data_hash
            return digest
    tmp = store.new_tmp()
    try:
        digest, data_hash = arrays.write_array_dir(tmp, array, digest, data_hash)
        store.backend.publish(f"tmp/{tmp.name}", store.object_rel(digest), arrays.META)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if memo is not None:
        memo[id(original)] = data_hash
    return digest
