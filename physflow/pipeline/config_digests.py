"""Config digests, remembered across Pipeline rebuilds in one process.

A script or notebook cell that rebuilds its Pipeline makes new config objects with the same
values; digesting each again is most of what a cached re-run costs. Configs whose fields are
all plain scalars (exactly ``float``, ``int``, ``str``, ``bool`` or ``None``) are remembered
under their class object and the msgpack bytes of their field values: that pair decides the
digest (msgpack keeps ``1``, ``1.0`` and ``True`` apart, and ``-0.0`` from ``0.0``). Anything
else (arrays, nested structs, containers, subclasses of those types) is digested every time.
"""

from __future__ import annotations

import msgspec

from ..core.hashing import digest

_PLAIN = frozenset({float, int, str, bool, type(None)})
_MAX_REMEMBERED = 1 << 16
_encode = msgspec.msgpack.Encoder().encode
_remembered: dict[tuple[type, bytes], str] = {}


def config_digest(config: msgspec.Struct | None) -> str:
    """``digest(config)``, from memory when the same plain values were digested before."""
    if config is None:
        return digest(None)
    values = msgspec.structs.astuple(config)
    for value in values:
        if type(value) not in _PLAIN:
            return digest(config)
    try:
        memo_key = (type(config), _encode(values))
    except (OverflowError, msgspec.EncodeError):  # ints beyond 64 bits
        return digest(config)
    known = _remembered.get(memo_key)
    if known is None:
        known = digest(config)
        if len(_remembered) >= _MAX_REMEMBERED:
            _remembered.clear()
        _remembered[memo_key] = known
    return known
