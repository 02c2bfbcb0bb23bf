"""The tagged tree encoding: values as msgpack-able trees that round-trip their exact types.

Small values (numbers, strings, containers, Structs, small arrays) live inline in the action
record; large leaves are written as objects and appear in the tree as ``["o", codec, digest]``;
values stored through a host form (tensors via numpy) appear as ``["x", codec, meta, subtree]``.
Types without a rule are refused (never pickled unless the stage opted in).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from ..core.freeze import FrozenDict, FrozenList
from ..core.value_types import register_value_type, type_path, value_type

#: Arrays (and bytes) at most this large are stored inline in the record.
INLINE_MAX_BYTES = 16 * 1024


class UnsupportedValueError(TypeError):
    """A value has no codec; the message names the type and the options."""


def _path(cls: type) -> str:
    """The name a stored tree gives ``cls`` (registered: this process may decode it later)."""
    path = type_path(cls)
    if path not in _SEEN:
        register_value_type(cls)
        _SEEN.add(path)
    return path


_SEEN: set[str] = set()


StoreLeaf = Callable[[Any], list | None]
"""Called for each leaf that is not inline: returns an object reference tree, or None."""


def to_tree(value: Any, store_leaf: StoreLeaf) -> Any:
    """Encode ``value``; large leaves go through ``store_leaf`` (which writes them as objects)."""
    t = type(value)
    if value is None:
        return ["n"]
    if t is bool:
        return ["b", value]
    if t is int:
        return ["i", value] if -(1 << 63) <= value < (1 << 64) else ["I", str(value)]
    if t is float:
        return ["f", value]
    if t is complex:
        return ["c", value.real, value.imag]
    if t is str:
        return ["s", value]
    if t is bytes and len(value) <= INLINE_MAX_BYTES:
        return ["y", value]
    if t is tuple:
        return ["t", [to_tree(v, store_leaf) for v in value]]
    if t is list or t is FrozenList:
        return ["l", [to_tree(v, store_leaf) for v in value]]
    if t is dict or t is FrozenDict:
        return ["d", [[to_tree(k, store_leaf), to_tree(v, store_leaf)] for k, v in value.items()]]
    if isinstance(value, msgspec.Struct):
        fields = {f: to_tree(getattr(value, f), store_leaf) for f in t.__struct_fields__}
        return ["S", _path(t), fields]
    if isinstance(value, enum.Enum):
        return ["E", _path(t), to_tree(value.value, store_leaf)]
    if isinstance(value, np.generic) and _inline_dtype(value.dtype):
        # (a structured scalar's dtype.str is "|V<n>": its fields would be lost, so refused)
        return ["g", value.dtype.str, np.asarray(value).tobytes()]
    if t is np.ndarray and value.nbytes <= INLINE_MAX_BYTES and _inline_dtype(value.dtype):
        return ["a", value.dtype.str, list(value.shape), np.ascontiguousarray(value).tobytes()]
    ref = store_leaf(value)
    if ref is None:
        raise UnsupportedValueError(
            f"physflow has no codec for a value of type {t.__module__}.{t.__qualname__}. "
            "Return numbers, str, bytes, lists/tuples/dicts, msgspec Structs, numpy arrays, "
            "xarray DataArray/Dataset or torch/jax/cupy tensors, or declare the stage with "
            "@pf.stage(pickle=True) to store it pickled (loaded only by a store opened with "
            "allow_pickle=True)."
        )
    return ref


def _inline_dtype(dtype: np.dtype) -> bool:
    return not dtype.hasobject and dtype.fields is None


LoadLeaf = Callable[[list], Any]


def from_tree(tree: list, load_leaf: LoadLeaf) -> Any:
    """Decode a tree made by :func:`to_tree`; object references go through ``load_leaf``."""
    tag = tree[0]
    if tag == "n":
        return None
    if tag in ("b", "i", "f", "s", "y"):
        return tree[1]
    if tag == "I":
        return int(tree[1])
    if tag == "c":
        return complex(tree[1], tree[2])
    if tag == "t":
        return tuple(from_tree(v, load_leaf) for v in tree[1])
    if tag == "l":
        return [from_tree(v, load_leaf) for v in tree[1]]
    if tag == "d":
        return {from_tree(k, load_leaf): from_tree(v, load_leaf) for k, v in tree[1]}
    if tag == "S":
        cls = value_type(tree[1])
        fields = {k: from_tree(v, load_leaf) for k, v in tree[2].items()}
        value = cls(**fields)
        # The stored fields, not what a __post_init__ makes of them (it ran when first built).
        for name, field_value in fields.items():
            msgspec.structs.force_setattr(value, name, field_value)
        return value
    if tag == "E":
        return value_type(tree[1])(from_tree(tree[2], load_leaf))
    if tag == "g":
        return np.frombuffer(tree[2], dtype=np.dtype(tree[1]))[0]
    if tag == "a":
        dtype = np.dtype(tree[1])
        return np.frombuffer(tree[3], dtype=dtype).reshape(tree[2]).copy()
    if tag == "o":
        return load_leaf(tree)
    if tag == "x":  # a value stored through a codec's host form (e.g. a tensor via numpy)
        return load_leaf(["x", tree[1], tree[2], from_tree(tree[3], load_leaf)])
    raise ValueError(f"unknown tag {tag!r} in a stored value tree (written by a newer physflow?)")


def tree_objects(tree: Any) -> list[str]:
    """Digests of the objects a tree references."""
    found: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, list) or not node:
            continue
        tag = node[0]
        if tag == "o":
            found.append(node[2])
        elif tag in ("t", "l"):
            stack.extend(node[1])
        elif tag == "d":
            for k, v in node[1]:
                stack.append(k)
                stack.append(v)
        elif tag == "S":
            stack.extend(node[2].values())
        elif tag == "E":
            stack.append(node[2])
        elif tag == "x":
            stack.append(node[3])
    return found
