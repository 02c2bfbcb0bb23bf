"""Values shared between consumers without copies: arrays as read-only views, containers
rebuilt around them; anything a consumer could change in place is :data:`MUTABLE` (the consumer
then gets its own copy from the store)."""

from __future__ import annotations

import copy
import enum
from typing import Any

import msgspec
import numpy as np

MUTABLE = object()
_IMMUTABLE_LEAVES = (type(None), bool, int, float, complex, str, bytes, np.generic, enum.Enum)


def read_only(value: Any) -> Any:
    """``value`` as consumers may share it: arrays as read-only views (no copy), containers
    rebuilt around them; ``MUTABLE`` when it holds anything else a consumer could change in
    place (the consumer then gets its own copy from the store). Without this, a stage doing
    ``x *= 2`` on its input would change what other consumers of the same value compute --
    and cache."""
    t = type(value)
    if t is np.ndarray or t is np.memmap:
        if value.dtype.hasobject:
            return MUTABLE
        view = value.view()
        view.flags.writeable = False
        return view
    if isinstance(value, _IMMUTABLE_LEAVES):
        return value
    if t is tuple or t is list:
        items = [read_only(v) for v in value]
        return MUTABLE if any(v is MUTABLE for v in items) else t(items)
    if t is dict:
        pairs = [(k, read_only(v)) for k, v in value.items()]
        return MUTABLE if any(v is MUTABLE for _, v in pairs) else dict(pairs)
    if isinstance(value, msgspec.Struct):
        fields = {f: read_only(getattr(value, f)) for f in t.__struct_fields__}
        if any(v is MUTABLE for v in fields.values()):
            return MUTABLE
        shared = copy.copy(value)  # a shallow copy: no __init__ / __post_init__ re-run
        for name, field_value in fields.items():
            msgspec.structs.force_setattr(shared, name, field_value)
        return shared
    return MUTABLE
