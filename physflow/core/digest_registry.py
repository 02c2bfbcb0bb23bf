"""The digest registry: type -> rule, the feeder that runs rules, and the cycle guard.

A rule ``rule(buf, value, feeder)`` appends a type tag and the value's canonical encoding to
``buf``, handing nested values back to ``feeder.feed``. Containers enter and leave the feeder's
set of open containers, so a self-referential value raises :class:`UnhashableValueError` naming
the path to the loop instead of recursing until ``RecursionError``. Errors raised deep inside a
value collect the path on their way out (``config.items[2]['x']``), so the message says where.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import blake3
import numpy as np

from .framing import DIGEST_PREFIX

_PROTOCOL_METHOD = "__physflow_digest__"
#: Buffers at least this large are hashed with blake3's multithreaded mode.
PARALLEL_HASH_BYTES = 1 << 20


class UnhashableValueError(TypeError):
    """A value has no digest rule, or cannot be digested deterministically."""

    def __init__(self, message: str, path: str = "") -> None:
        self.message = message
        self.path = path
        super().__init__(self._render())

    def at(self, segment: str) -> UnhashableValueError:
        """The same error one container further out (``segment`` like ``[2]`` or ``.field``)."""
        self.path = segment + self.path
        self.args = (self._render(),)
        return self

    def _render(self) -> str:
        return f"{self.message} (at value{self.path})" if self.path else self.message

    def __reduce__(self) -> tuple:
        return (type(self), (self.message, self.path))


Rule = Callable[[bytearray, Any, "Feeder"], None]
_RULES: dict[type, Rule] = {}
_LOOKUP_CACHE: dict[type, Rule | None] = {}
_LAZY_LOADERS: dict[str, list[Callable[[], None]]] = {}
#: Registered builtin types whose subclasses get their class (and attributes) in the digest.
EXACT_BASES: set[type] = set()
#: Subclasses that are the same value as their base (a memmap is an ndarray on disk).
SAME_AS_BASE: set[type] = {np.memmap}
#: Rules chosen before the MRO walk (enum before its mixin base, numpy scalars before str/float).
PRIORITY_RULES: list[tuple[type, Rule]] = []


def register_digest_rule(cls: type) -> Callable[[Rule], Rule]:
    """Register ``rule(buf, value, feeder)`` as the digest rule of ``cls`` and its subclasses."""

    def deco(rule: Rule) -> Rule:
        _RULES[cls] = rule
        _LOOKUP_CACHE.clear()
        return rule

    return deco


def register_lazy_rules(module: str, loader: Callable[[], None]) -> None:
    """Call ``loader`` (which registers rules) the first time a type from ``module`` is hashed."""
    _LAZY_LOADERS.setdefault(module, []).append(loader)


def find_rule(cls: type) -> Rule | None:
    try:
        return _LOOKUP_CACHE[cls]
    except KeyError:
        pass
    rule = _RULES.get(cls)
    if rule is None:
        rule = next((r for base, r in PRIORITY_RULES if issubclass(cls, base)), None)
    if rule is None:
        rule = _rule_from_bases(cls)
    if rule is None and hasattr(cls, _PROTOCOL_METHOD):
        rule = _protocol_rule
    if rule is None:
        rule = _lazy_rule(cls)
    _LOOKUP_CACHE[cls] = rule
    return rule


def _rule_from_bases(cls: type) -> Rule | None:
    for base in cls.__mro__[1:]:
        if base in _RULES and base is not object:
            rule = _RULES[base]
            if base in EXACT_BASES and cls not in SAME_AS_BASE:
                rule = _subclass_rule(cls, rule)
            return rule
    return None


def qualified(cls: type) -> bytes:
    return f"{cls.__module__}:{cls.__qualname__}".encode()


def put_bytes(buf: bytearray, tag: bytes, data: bytes) -> None:
    """``tag`` then ``data`` framed by its length (the value encoding's one framing)."""
    buf += tag
    buf += len(data).to_bytes(8, "little")
    buf += data


def _subclass_rule(cls: type, base_rule: Rule) -> Rule:
    """A subclass of a builtin type (namedtuple, str subclass, np.matrix...) is not its base:
    the class and any instance attributes count, so it never shares a digest with the base."""
    name = qualified(cls)

    def rule(buf: bytearray, value: Any, feeder: Feeder) -> None:
        put_bytes(buf, b"C", name)
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
        rule = _rule_from_bases(cls)
        if rule is not None:
            return rule
    return None


def _protocol_rule(buf: bytearray, value: Any, feeder: Feeder) -> None:
    data = getattr(value, _PROTOCOL_METHOD)()
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, bytes):
        raise UnhashableValueError(
            f"{type(value).__qualname__}.{_PROTOCOL_METHOD}() must return bytes or str"
        )
    put_bytes(buf, b"P", qualified(type(value)))
    put_bytes(buf, b"p", data)


def _no_rule(value: Any) -> UnhashableValueError:
    t = type(value)
    return UnhashableValueError(
        f"physflow cannot digest a value of type {t.__module__}.{t.__qualname__}: no digest "
        "rule is registered. Convert it to a supported type (numbers, str, bytes, tuples, "
        "lists, dicts, numpy arrays, msgspec Structs), give the class a "
        "__physflow_digest__(self) -> bytes method, or register a rule with "
        "physflow.core.hashing.register_digest_rule."
    )


class Feeder:
    """Accumulates the canonical, type-tagged encoding of a value."""

    __slots__ = ("buf", "memo", "open")

    def __init__(self, memo: dict[int, bytes] | None = None) -> None:
        self.buf = bytearray()
        #: id(buffer owner) -> blake3 of its bytes, when already known (see digest_with_memo)
        self.memo = memo
        #: ids of the containers being encoded right now (the cycle guard)
        self.open: set[int] = set()

    def feed(self, value: Any) -> None:
        rule = find_rule(type(value))
        if rule is None:
            raise _no_rule(value)
        rule(self.buf, value, self)

    def enter(self, container: Any) -> None:
        """Mark ``container`` open; meeting it again inside itself is a cycle."""
        ident = id(container)
        if ident in self.open:
            raise UnhashableValueError(
                f"a self-referential {type(container).__qualname__} cannot be digested (it "
                "contains itself); break the cycle or give the class __physflow_digest__"
            )
        self.open.add(ident)

    def leave(self, container: Any) -> None:
        self.open.discard(id(container))

    def feed_buffer(self, data: memoryview) -> None:
        """Feed a buffer as its own blake3 digest (multithreaded when large), never copied.

        Hashing the buffer separately keeps the rule independent of how the bytes arrive, so a
        writer that streams chunks produces the same digest as one that holds the whole array.
        """
        self.buf += b"H"
        self.buf += hash_array_bytes(data)

    def hexdigest(self) -> str:
        return DIGEST_PREFIX + blake3.blake3(self.buf).hexdigest()


def segment_for(key: Any) -> str:
    """How a container element appears in an error path: ``[3]``, ``['name']`` or ``.field``."""
    if isinstance(key, str) and key.startswith("."):
        return key
    return f"[{key!r}]"


#: blake3's thread pool does not survive ``fork``: a forked child (a DataLoader worker, a
#: multiprocessing "fork" pool) that used it would hang forever. Children hash single-threaded.
_THREADS_OK = True


def _after_fork_in_child() -> None:
    global _THREADS_OK
    _THREADS_OK = False


os.register_at_fork(after_in_child=_after_fork_in_child)


def new_hasher() -> Any:
    """A blake3 hasher for large data: multithreaded, except in forked children."""
    if _THREADS_OK:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


def hash_array_bytes(data: memoryview | bytes) -> bytes:
    """Raw blake3 of a buffer, multithreaded for large ones (an integer thread count would
    build a thread pool per call: ``AUTO`` only, only above 1 MiB, never in forked children)."""
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size >= PARALLEL_HASH_BYTES and _THREADS_OK:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()
    return blake3.blake3(data).digest()
