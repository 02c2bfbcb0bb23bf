"""Deep immutability for values whose digest is memoised (configs, default inputs).

A frozen msgspec Struct still holds mutable lists, dicts, sets and arrays: ``cfg.taps.append(x)``
would change a config after its digest was taken, and a re-run would serve the old result (a
false hit). :func:`deep_freeze` returns an equal value that refuses in-place changes:
lists become :class:`FrozenList`, dicts :class:`FrozenDict`, sets :class:`FrozenSet`, arrays
read-only copies whose base is immutable bytes. They digest exactly like the originals (same
rules), so freezing changes no cache key. Nested msgspec Structs must be frozen themselves.
"""

from __future__ import annotations

from typing import Any, NoReturn

import msgspec
import numpy as np

from .digest_registry import register_digest_rule
from .value_rules import _dict, _sequence, _set_rule


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"this {type(self).__bases__[0].__name__} belongs to a config (or a stage's default "
        "input) and cannot be changed in place: its digest is already part of cache keys. "
        "Build a new value instead (e.g. msgspec.structs.replace(cfg, field=new))."
    )


class FrozenList(list):
    """A list that refuses in-place changes (digests like a list)."""

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple:
        return (FrozenList, (list(self),))


class FrozenDict(dict):
    """A dict that refuses in-place changes (digests like a dict)."""

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple:
        return (FrozenDict, (dict(self),))


class FrozenSet(set):
    """A set that refuses in-place changes (digests like a set, not a frozenset)."""

    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse

    def __reduce__(self) -> tuple:
        return (FrozenSet, (set(self),))


register_digest_rule(FrozenList)(_sequence(b"["))
register_digest_rule(FrozenDict)(_dict)
register_digest_rule(FrozenSet)(_set_rule(b"S"))


def frozen_array(array: np.ndarray) -> np.ndarray:
    """A read-only copy that cannot be made writable again (its base is immutable bytes)."""
    if array.dtype.hasobject:
        return array  # object arrays have no digest: refused when digested
    data = np.ascontiguousarray(array).tobytes()
    return np.frombuffer(data, dtype=array.dtype).reshape(array.shape)


def deep_freeze(value: Any, where: str = "value") -> Any:
    """An equal value that cannot be changed in place (``value`` itself when it already is)."""
    t = type(value)
    if t is list or t is FrozenList:
        items = [deep_freeze(v, where) for v in value]
        return (
            value
            if t is FrozenList and all(a is b for a, b in zip(items, value))
            else (FrozenList(items))
        )
    if t is tuple:
        items = [deep_freeze(v, where) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else tuple(items)
    if t is dict or t is FrozenDict:
        return FrozenDict({k: deep_freeze(v, where) for k, v in value.items()})
    if t is set:
        return FrozenSet(value)  # set items are hashable, hence immutable already
    if t is np.ndarray:
        return value if _is_frozen_array(value) else frozen_array(value)
    if isinstance(value, msgspec.Struct) and not t.__struct_config__.frozen:
        raise TypeError(
            f"{where} holds a mutable msgspec Struct ({t.__qualname__}); its fields could change "
            "after the config's digest is taken. Declare it with frozen=True (or make it a "
            "physflow.Config)."
        )
    return value


def _is_frozen_array(array: Any) -> bool:
    """Read-only all the way down to immutable bytes (an array that owns its memory can be
    made writable again; one over bytes cannot)."""
    while isinstance(array, np.ndarray):
        if array.flags.writeable:
            return False
        array = array.base
    return isinstance(array, bytes)
