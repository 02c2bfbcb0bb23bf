"""Value digests: one registry of type-tagged rules feeding blake3.

Every rule writes a type tag before the value, so ``1``, ``1.0``, ``"1"`` and ``True`` never
collide, and arrays contribute dtype (with byte order) and shape before their bytes. Unknown
types are an error: a digest built from ``str(x)``, ``hash(x)`` or pickle bytes can produce false
cache hits, the worst bug a cache can have.
"""

from __future__ import annotations

import collections
import enum
import math
import struct
from collections.abc import Callable
from typing import Any

import blake3
import msgspec
import numpy as np

DIGEST_PREFIX = "b3:"
#: Buffers at least this large are hashed with blake3's multithreaded mode.
PARALLEL_HASH_BYTES = 1 << 20


class UnhashableValueError(TypeError):
    """Raised when a value has no digest rule."""


Rule = Callable[[bytearray, Any, "_Feeder"], None]
_RULES: dict[type, Rule] = {}
_PROTOCOL_METHOD = "__physflow_digest__"


def register_digest_rule(cls: type) -> Callable[[Rule], Rule]:
    """Register ``rule(buf, value, feeder)`` as the digest rule of ``cls`` and its subclasses."""

    def deco(rule: Rule) -> Rule:
        _RULES[cls] = rule
        _LOOKUP_CACHE.clear()
        return rule

    return deco


_LOOKUP_CACHE: dict[type, Rule | None] = {}


def _find_rule(cls: type) -> Rule | None:
    try:
        return _LOOKUP_CACHE[cls]
    except KeyError:
        pass
    rule = _RULES.get(cls)
    if rule is None and issubclass(cls, enum.Enum):
        rule = _enum  # before a mixin base (IntEnum is an int): the enum class must count
    elif rule is None and issubclass(cls, np.generic):
        rule = _np_scalar  # np.str_ is a str, np.float64 a float: dtype must count
    elif rule is None and issubclass(cls, np.ndarray) and issubclass(cls, np.ma.MaskedArray):
        rule = _masked_array
    if rule is None:
        for base in cls.__mro__[1:]:
            if base in _RULES and base is not object:
                rule = _RULES[base]
                if base in _EXACT_BASES and cls not in _SAME_AS_BASE:
                    rule = _subclass_rule(cls, rule)
                break
    if rule is None and hasattr(cls, _PROTOCOL_METHOD):
        rule = _protocol_rule
    if rule is None:
        rule = _lazy_rule(cls)
    _LOOKUP_CACHE[cls] = rule
    return rule


def _subclass_rule(cls: type, base_rule: Rule) -> Rule:
    """A subclass of a builtin type (namedtuple, str subclass, np.matrix...) is not its base:
    the class and any instance attributes count, so it never shares a digest with the base."""
    name = _qualified(cls)

    def rule(buf: bytearray, value: Any, feeder: _Feeder) -> None:
        _str_bytes(buf, b"C", name)
        attrs = getattr(value, "__dict__", None)
        feeder.feed(dict(attrs) if attrs else None)
        base_rule(buf, value, feeder)

    return rule


def _lazy_rule(cls: type) -> Rule | None:
    """Rules for optional libraries, found by module name so nothing heavy is imported here."""
    module = cls.__module__.split(".")[0]
    for loader in _LAZY_LOADERS.get(module, ()):
        loader()
        if cls in _RULES:
            return _RULES[cls]
        for base in cls.__mro__[1:]:
            if base in _RULES and base is not object:
                return _RULES[base]
    return None


_LAZY_LOADERS: dict[str, list[Callable[[], None]]] = {}


def register_lazy_rules(module: str, loader: Callable[[], None]) -> None:
    """Call ``loader`` (which registers rules) the first time a type from ``module`` is hashed."""
    _LAZY_LOADERS.setdefault(module, []).append(loader)


class _Feeder:
    """Accumulates the canonical, type-tagged encoding of a value."""

    __slots__ = ("buf", "memo")

    def __init__(self) -> None:
        self.buf = bytearray()
        #: id(buffer owner) -> blake3 of its bytes, when already known (see digest_with_memo)
        self.memo: dict[int, bytes] | None = None

    def feed(self, value: Any) -> None:
        rule = _find_rule(type(value))
        if rule is None:
            raise UnhashableValueError(
                f"physflow cannot digest a value of type {type(value).__module__}."
                f"{type(value).__qualname__}: no digest rule is registered. Convert it to a "
                "supported type (numbers, str, bytes, tuples, lists, dicts, numpy arrays, "
                "msgspec Structs), give the class a __physflow_digest__(self) -> bytes method, "
                "or register a rule with physflow.pipeline.hashing.register_digest_rule."
            )
        rule(self.buf, value, self)

    def feed_buffer(self, data: memoryview) -> None:
        """Feed a buffer as its own blake3 digest (multithreaded when large), never copied.

        Hashing the buffer separately keeps the rule independent of how the bytes arrive, so a
        writer that streams chunks produces the same digest as one that holds the whole array.
        """
        self.buf += b"H"
        self.buf += hash_array_bytes(data)

    def hexdigest(self) -> str:
        return DIGEST_PREFIX + blake3.blake3(self.buf).hexdigest()


def digest(value: Any) -> str:
    """The content digest of ``value``: ``"b3:" + 64 hex digits``.

    Equal values give equal digests across processes and machines; any change of type, dtype,
    shape, byte order, field or element gives a different one.
    """
    feeder = _Feeder()
    feeder.feed(value)
    return feeder.hexdigest()


def digest_bytes_of(*parts: bytes | str) -> str:
    """Digest of a sequence of already-canonical parts (used to combine digests into keys)."""
    chunks: list[bytes] = []
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        chunks.append(len(data).to_bytes(8, "little"))
        chunks.append(data)
    return DIGEST_PREFIX + blake3.blake3(b"".join(chunks)).hexdigest()


def _str_bytes(buf: bytearray, tag: bytes, data: bytes) -> None:
    buf += tag
    buf += struct.pack("<Q", len(data))
    buf += data


@register_digest_rule(type(None))
def _none(buf: bytearray, value: None, feeder: _Feeder) -> None:
    buf += b"N"


@register_digest_rule(bool)
def _bool(buf: bytearray, value: bool, feeder: _Feeder) -> None:
    buf += b"T" if value else b"F"


@register_digest_rule(int)
def _int(buf: bytearray, value: int, feeder: _Feeder) -> None:
    if -(1 << 63) <= value < (1 << 63):
        buf += b"i"
        buf += struct.pack("<q", value)
    else:
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        _str_bytes(buf, b"I", data)


_NAN_BITS = struct.pack("<d", math.nan)


@register_digest_rule(float)
def _float(buf: bytearray, value: float, feeder: _Feeder) -> None:
    buf += b"f"
    buf += _NAN_BITS if value != value else struct.pack("<d", value)


@register_digest_rule(complex)
def _complex(buf: bytearray, value: complex, feeder: _Feeder) -> None:
    buf += b"c"
    for part in (value.real, value.imag):
        buf += _NAN_BITS if part != part else struct.pack("<d", part)


@register_digest_rule(str)
def _str(buf: bytearray, value: str, feeder: _Feeder) -> None:
    _str_bytes(buf, b"s", value.encode("utf-8", "surrogatepass"))


@register_digest_rule(bytes)
def _bytes(buf: bytearray, value: bytes, feeder: _Feeder) -> None:
    buf += b"b"
    buf += struct.pack("<Q", len(value))
    if feeder.memo is not None and id(value) in feeder.memo:
        buf += b"H" + feeder.memo[id(value)]
        return
    feeder.feed_buffer(memoryview(value))


@register_digest_rule(bytearray)
def _bytearray(buf: bytearray, value: bytearray, feeder: _Feeder) -> None:
    buf += b"B"  # mutable: not the same value as bytes, which it would come back as
    _bytes(buf, bytes(value), feeder)


def _sequence(tag: bytes) -> Rule:
    def rule(buf: bytearray, value: Any, feeder: _Feeder) -> None:
        buf += tag
        buf += struct.pack("<Q", len(value))
        for item in value:
            feeder.feed(item)

    return rule


register_digest_rule(tuple)(_sequence(b"("))
register_digest_rule(list)(_sequence(b"["))


def _sorted_digests(items: Any) -> list[str]:
    return sorted(digest(item) for item in items)


@register_digest_rule(frozenset)
def _frozenset(buf: bytearray, value: frozenset, feeder: _Feeder) -> None:
    buf += b"z"
    _set_body(buf, value)


@register_digest_rule(set)
def _set(buf: bytearray, value: set, feeder: _Feeder) -> None:
    buf += b"S"
    _set_body(buf, value)


def _set_body(buf: bytearray, value: Any) -> None:
    buf += struct.pack("<Q", len(value))
    for item_digest in _sorted_digests(value):
        buf += item_digest.encode()


@register_digest_rule(dict)
def _dict(buf: bytearray, value: dict, feeder: _Feeder) -> None:
    # Order-independent: entries are sorted by the digest of their key.
    buf += b"{"
    buf += struct.pack("<Q", len(value))
    entries = sorted((digest(k), v) for k, v in value.items())
    for key_digest, item in entries:
        buf += key_digest.encode()
        feeder.feed(item)


def _qualified(cls: type) -> bytes:
    return f"{cls.__module__}:{cls.__qualname__}".encode()


@register_digest_rule(collections.OrderedDict)
def _ordered_dict(buf: bytearray, value: collections.OrderedDict, feeder: _Feeder) -> None:
    # Order matters to OrderedDict equality, so it matters to the digest.
    _str_bytes(buf, b"C", _qualified(type(value)))
    feeder.feed(dict(value.__dict__) if getattr(value, "__dict__", None) else None)
    buf += b"<"
    buf += struct.pack("<Q", len(value))
    for key, item in value.items():
        feeder.feed(key)
        feeder.feed(item)


@register_digest_rule(collections.defaultdict)
def _default_dict(buf: bytearray, value: collections.defaultdict, feeder: _Feeder) -> None:
    factory = value.default_factory
    qualname = getattr(factory, "__qualname__", "<unknown>")
    if factory is not None and ("<" in qualname or not hasattr(factory, "__module__")):
        raise UnhashableValueError(
            f"physflow cannot digest a defaultdict whose default_factory is {factory!r} (no "
            "stable name); use a named function or class, or convert it to a dict"
        )
    _str_bytes(buf, b"C", _qualified(type(value)))
    _str_bytes(buf, b"D", b"" if factory is None else _qualified(factory))
    _dict(buf, value, feeder)


@register_digest_rule(msgspec.Struct)
def _struct(buf: bytearray, value: msgspec.Struct, feeder: _Feeder) -> None:
    cls = type(value)
    _str_bytes(buf, b"R", _qualified(cls))
    fields = cls.__struct_fields__
    buf += struct.pack("<Q", len(fields))
    for name in fields:
        _str_bytes(buf, b"k", name.encode())
        feeder.feed(getattr(value, name))


@register_digest_rule(enum.Enum)
def _enum(buf: bytearray, value: enum.Enum, feeder: _Feeder) -> None:
    _str_bytes(buf, b"E", _qualified(type(value)))
    feeder.feed(value.value)


def _protocol_rule(buf: bytearray, value: Any, feeder: _Feeder) -> None:
    data = getattr(value, _PROTOCOL_METHOD)()
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, bytes):
        raise UnhashableValueError(
            f"{type(value).__qualname__}.{_PROTOCOL_METHOD}() must return bytes or str"
        )
    _str_bytes(buf, b"P", _qualified(type(value)))
    _str_bytes(buf, b"p", data)


def dtype_token(dtype: np.dtype) -> bytes:
    """dtype with byte order, including structured layouts; object dtype has no digest."""
    if dtype.hasobject:
        raise UnhashableValueError(
            "physflow cannot digest numpy arrays of dtype object: their bytes are pointers. "
            "Use a numeric, bool, string or structured dtype."
        )
    if dtype.fields is None:
        return dtype.str.encode()
    try:
        return str(dtype.descr).encode()
    except ValueError:  # overlapping or out-of-order fields have no descr: spell them out
        fields = [
            (n, dtype_token(dtype.fields[n][0]).decode(), dtype.fields[n][1]) for n in dtype.names
        ]
        return str(("fields", fields, dtype.itemsize)).encode()


def array_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The prefix every array digest starts with (also used by the streaming writer)."""
    token = dtype_token(dtype)
    return (
        b"A"
        + struct.pack("<Q", len(token))
        + token
        + struct.pack("<Q", len(shape))
        + b"".join(struct.pack("<q", n) for n in shape)
    )


def canonical_nan(array: np.ndarray) -> np.ndarray:
    """Scalars with NaNs get one NaN bit pattern, so all NaNs digest alike.

    Arrays are digested by their exact bytes (a different NaN payload is a miss, never a false
    hit); scanning every large array for NaNs would halve hashing speed.
    """
    kind = array.dtype.kind
    if kind in "fc" and array.size and np.isnan(array).any():
        array = array.copy()
        if kind == "c":
            real, imag = array.real, array.imag
            real[np.isnan(real)] = np.nan
            imag[np.isnan(imag)] = np.nan
        else:
            array[np.isnan(array)] = np.nan
    return array


def array_bytes_view(array: np.ndarray) -> memoryview:
    """The C-order bytes of a contiguous array as a flat byte view (no copy)."""
    return memoryview(array.reshape(-1).view(np.uint8))


@register_digest_rule(np.ndarray)
def _ndarray(buf: bytearray, value: np.ndarray, feeder: _Feeder) -> None:
    buf += array_header(value.dtype, value.shape)
    if feeder.memo is not None and id(value) in feeder.memo:
        buf += b"H" + feeder.memo[id(value)]
        return
    if not value.flags.c_contiguous:
        value = np.ascontiguousarray(value)
    feeder.feed_buffer(array_bytes_view(value))


def _masked_array(buf: bytearray, value: np.ma.MaskedArray, feeder: _Feeder) -> None:
    """Masked arrays: the mask and fill value count (the data alone would be a false hit)."""
    _str_bytes(buf, b"M", _qualified(type(value)))
    _ndarray(buf, np.ma.getdata(value), feeder)
    _ndarray(buf, np.ma.getmaskarray(value), feeder)
    feeder.feed(np.asarray(value.fill_value)[()])


@register_digest_rule(np.generic)
def _np_scalar(buf: bytearray, value: np.generic, feeder: _Feeder) -> None:
    buf += b"a"
    _ndarray(buf, canonical_nan(np.asarray(value)), feeder)


#: Registered builtin types whose subclasses get their class (and attributes) in the digest.
_EXACT_BASES = frozenset(
    {int, float, complex, str, bytes, bytearray, tuple, list, dict, set, frozenset, np.ndarray}
)
#: Subclasses that are the same value as their base (a memmap is an ndarray on disk).
_SAME_AS_BASE = frozenset({np.memmap})


def hash_array_bytes(data: memoryview | bytes) -> bytes:
    """Raw blake3 of a buffer, multithreaded for large ones."""
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size >= PARALLEL_HASH_BYTES:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()
    return blake3.blake3(data).digest()


def array_digest_from_parts(dtype: np.dtype, shape: tuple[int, ...], data_hash: bytes) -> str:
    """The digest of an array given the blake3 of its C-order bytes (for streaming writers)."""
    return DIGEST_PREFIX + blake3.blake3(array_header(dtype, shape) + b"H" + data_hash).hexdigest()


def is_digestible(value: Any) -> bool:
    """Whether ``value``'s type has a digest rule (without computing the digest)."""
    return _find_rule(type(value)) is not None


__all__ = [
    "UnhashableValueError",
    "array_header",
    "digest",
    "digest_bytes_of",
    "hash_array_bytes",
    "register_digest_rule",
    "register_lazy_rules",
]


def digest_with_memo(value: Any, memo: dict[int, bytes]) -> str:
    """Like :func:`digest`, reusing already-known digests of large leaves (by object identity).

    Stores hash large arrays while writing them; this avoids hashing them a second time when the
    digest of a container holding them is needed.
    """
    feeder = _Feeder()
    feeder.memo = memo
    feeder.feed(value)
    return feeder.hexdigest()


def _artifact_rules(module: str) -> Callable[[], None]:
    def load() -> None:
        from ..artifacts.digest_rules import load as load_rules

        load_rules(module)

    return load


# Digest rules of optional libraries (torch, jax, cupy, xarray) live with their codecs.
for _module in ("torch", "jax", "jaxlib", "cupy", "xarray"):
    register_lazy_rules(_module, _artifact_rules(_module))
