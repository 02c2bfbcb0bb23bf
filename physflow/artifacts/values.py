"""Values <-> the store: encode a value as a tagged tree whose large leaves are objects, and
decode it back, verifying what is read. Types without a codec are refused (pickle only when the
stage opted in, and loaded only by a store opened with ``allow_pickle=True``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ..core.framing import merkle
from ..core.hashing import UnhashableValueError, digest_with_memo
from ..core.records import OutputEntry
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
