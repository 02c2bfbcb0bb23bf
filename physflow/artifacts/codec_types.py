"""What a codec is (name, type test, encoder, decoder) and the per-value write options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
