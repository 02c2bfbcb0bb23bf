"""The codec registry: for each value type, how it is written and read back.

Every codec owns an encoder (value -> tree, writing objects through the store) and a decoder
(tree -> value, verifying what it reads); digest rules live in :mod:`physflow.core`. Built in:

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

import threading
from typing import Any

import numpy as np

from .array_codec import (
    BUILTIN_CODECS,
    pickle_value,
    pickled_digest,
    read_array,
    write_array,
)
from .codec_types import Codec, WriteOptions

__all__ = [
    "Codec",
    "WriteOptions",
    "codec_named",
    "find_codec",
    "pickle_value",
    "pickled_digest",
    "read_array",
    "register_codec",
    "write_array",
]


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
    """The codec for ``value`` (optional libraries' codecs are found by the value's module)."""
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
_LOAD_LOCK = threading.Lock()


def _ensure_builtin() -> None:
    """Register the built-in codecs once. The flag is set only after they are all registered,
    under a lock: threads storing their first values at the same time all find them."""
    global _LOADED
    if _LOADED:
        return
    with _LOAD_LOCK:
        if _LOADED:
            return
        from . import tensors, xarray_codec

        for codec in BUILTIN_CODECS:
            register_codec(codec)
        for codec, modules in (*xarray_codec.codecs(), *tensors.codecs()):
            register_codec(codec, modules)
        _LOADED = True
