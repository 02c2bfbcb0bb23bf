"""Digest rules of Python's own values: scalars, strings, bytes, containers, Structs, enums.

Each rule writes a type tag first, so ``1``, ``1.0``, ``"1"`` and ``True`` never collide. Floats
count by their exact bits (``-0.0`` is not ``0.0``), every NaN by one canonical pattern. Dicts
and sets are order-independent (entries sorted by the digest of their key or item); a dict whose
keys have equal digests (several NaN keys) has no deterministic order and is refused.
"""

from __future__ import annotations

import collections
import enum
import math
import pathlib
import struct
from typing import Any

import msgspec

from .digest_registry import (
    EXACT_BASES,
    PRIORITY_RULES,
    Feeder,
    Rule,
    UnhashableValueError,
    put_bytes,
    qualified,
    register_digest_rule,
    segment_for,
)

_NAN_BITS = struct.pack("<d", math.nan)


@register_digest_rule(type(None))
def _none(buf: bytearray, value: None, feeder: Feeder) -> None:
    buf += b"N"


@register_digest_rule(bool)
def _bool(buf: bytearray, value: bool, feeder: Feeder) -> None:
    buf += b"T" if value else b"F"


@register_digest_rule(int)
def _int(buf: bytearray, value: int, feeder: Feeder) -> None:
    if -(1 << 63) <= value < (1 << 63):
        buf += b"i"
        buf += struct.pack("<q", value)
    else:
        put_bytes(buf, b"I", value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True))


@register_digest_rule(float)
def _float(buf: bytearray, value: float, feeder: Feeder) -> None:
    buf += b"f"
    buf += _NAN_BITS if value != value else struct.pack("<d", value)


@register_digest_rule(complex)
def _complex(buf: bytearray, value: complex, feeder: Feeder) -> None:
    buf += b"c"
    for part in (value.real, value.imag):
        buf += _NAN_BITS if part != part else struct.pack("<d", part)


@register_digest_rule(str)
def _str(buf: bytearray, value: str, feeder: Feeder) -> None:
    put_bytes(buf, b"s", value.encode("utf-8", "surrogatepass"))


@register_digest_rule(bytes)
def _bytes(buf: bytearray, value: bytes, feeder: Feeder) -> None:
    buf += b"b"
    buf += struct.pack("<Q", len(value))
    if feeder.memo is not None and id(value) in feeder.memo:
        buf += b"H" + feeder.memo[id(value)]
        return
    feeder.feed_buffer(memoryview(value))


@register_digest_rule(bytearray)
def _bytearray(buf: bytearray, value: bytearray, feeder: Feeder) -> None:
    buf += b"B"  # mutable: not the same value as bytes, which it would come back as
    _bytes(buf, bytes(value), feeder)


def _sequence(tag: bytes) -> Rule:
    def rule(buf: bytearray, value: Any, feeder: Feeder) -> None:
        buf += tag
        buf += struct.pack("<Q", len(value))
        feeder.enter(value)
        try:
            for i, item in enumerate(value):
                try:
                    feeder.feed(item)
                except UnhashableValueError as exc:
                    raise exc.at(f"[{i}]") from None
        finally:
            feeder.leave(value)

    return rule


register_digest_rule(tuple)(_sequence(b"("))
register_digest_rule(list)(_sequence(b"["))


def _item_digest(item: Any, feeder: Feeder) -> str:
    inner = Feeder(feeder.memo)
    inner.open = feeder.open
    inner.feed(item)
    return inner.hexdigest()


def _set_rule(tag: bytes) -> Rule:
    def rule(buf: bytearray, value: Any, feeder: Feeder) -> None:
        buf += tag
        buf += struct.pack("<Q", len(value))
        for item_digest in sorted(_item_digest(item, feeder) for item in value):
            buf += item_digest.encode()

    return rule


register_digest_rule(frozenset)(_set_rule(b"z"))
register_digest_rule(set)(_set_rule(b"S"))


@register_digest_rule(dict)
def _dict(buf: bytearray, value: dict, feeder: Feeder) -> None:
    buf += b"{"
    buf += struct.pack("<Q", len(value))
    feeder.enter(value)
    try:
        entries = sorted(
            ((_item_digest(k, feeder), k, v) for k, v in value.items()), key=lambda e: e[0]
        )
        for i in range(1, len(entries)):
            if entries[i][0] == entries[i - 1][0]:
                raise UnhashableValueError(
                    f"a dict with several keys of equal digest ({entries[i][1]!r}: e.g. several "
                    "NaN keys) has no deterministic order and cannot be digested; use distinct "
                    "keys"
                )
        for key_digest, key, item in entries:
            buf += key_digest.encode()
            try:
                feeder.feed(item)
            except UnhashableValueError as exc:
                raise exc.at(segment_for(key)) from None
    finally:
        feeder.leave(value)


@register_digest_rule(collections.OrderedDict)
def _ordered_dict(buf: bytearray, value: collections.OrderedDict, feeder: Feeder) -> None:
    # Order matters to OrderedDict equality, so it matters to the digest.
    put_bytes(buf, b"C", qualified(type(value)))
    feeder.feed(dict(value.__dict__) if getattr(value, "__dict__", None) else None)
    buf += b"<"
    buf += struct.pack("<Q", len(value))
    feeder.enter(value)
    try:
        for key, item in value.items():
            feeder.feed(key)
            try:
                feeder.feed(item)
            except UnhashableValueError as exc:
                raise exc.at(segment_for(key)) from None
    finally:
        feeder.leave(value)


@register_digest_rule(collections.defaultdict)
def _default_dict(buf: bytearray, value: collections.defaultdict, feeder: Feeder) -> None:
    factory = value.default_factory
    qualname = getattr(factory, "__qualname__", "<unknown>")
    if factory is not None and ("<" in qualname or not hasattr(factory, "__module__")):
        raise UnhashableValueError(
            f"physflow cannot digest a defaultdict whose default_factory is {factory!r} (no "
            "stable name); use a named function or class, or convert it to a dict"
        )
    put_bytes(buf, b"C", qualified(type(value)))
    put_bytes(buf, b"D", b"" if factory is None else qualified(factory))
    _dict(buf, value, feeder)


#: The exact bytes _float/_int/_str/_bool/_none write, inlined for Struct fields (configs are
#: digested on every planning pass; tests/core/test_golden_digests.py pins the result).
_SCALAR_FAST = {float, int, str, bool, type(None)}


def _scalar_bytes(buf: bytearray, value: Any) -> None:
    t = type(value)
    if t is float:
        buf += b"f"
        buf += _NAN_BITS if value != value else struct.pack("<d", value)
    elif t is int and -(1 << 63) <= value < (1 << 63):
        buf += b"i"
        buf += struct.pack("<q", value)
    elif t is str:
        put_bytes(buf, b"s", value.encode("utf-8", "surrogatepass"))
    elif t is bool:
        buf += b"T" if value else b"F"
    elif value is None:
        buf += b"N"
    else:
        _int(buf, value, None)  # type: ignore[arg-type]  # a big int


@register_digest_rule(msgspec.Struct)
def _struct(buf: bytearray, value: msgspec.Struct, feeder: Feeder) -> None:
    cls = type(value)
    put_bytes(buf, b"R", qualified(cls))
    fields = cls.__struct_fields__
    buf += struct.pack("<Q", len(fields))
    feeder.enter(value)
    try:
        for name in fields:
            put_bytes(buf, b"k", name.encode())
            item = getattr(value, name)
            if type(item) in _SCALAR_FAST:
                _scalar_bytes(buf, item)
                continue
            try:
                feeder.feed(item)
            except UnhashableValueError as exc:
                raise exc.at(f".{name}") from None
    finally:
        feeder.leave(value)


@register_digest_rule(pathlib.PurePath)
def _path(buf: bytearray, value: pathlib.PurePath, feeder: Feeder) -> None:
    """A path by its class and text (not the file it names: file contents enter keys only as
    values a stage returns or reads through a digest)."""
    put_bytes(buf, b"C", qualified(type(value)))
    put_bytes(buf, b"s", str(value).encode("utf-8", "surrogatepass"))


def _enum(buf: bytearray, value: enum.Enum, feeder: Feeder) -> None:
    put_bytes(buf, b"E", qualified(type(value)))
    feeder.feed(value.value)


register_digest_rule(enum.Enum)(_enum)
# before a mixin base (an IntEnum is an int): the enum class must count
PRIORITY_RULES.insert(0, (enum.Enum, _enum))
EXACT_BASES.update({int, float, complex, str, bytes, bytearray, tuple, list, dict, set, frozenset})
