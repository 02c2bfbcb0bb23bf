"""The closed set of classes stored data may name: decoding never imports or calls anything else.

A stored value tree names its Structs and enums by ``module:qualname``. A record is data written
by whoever could write the store (its checksum is not a signature), so decoding only constructs
classes this process registered: physflow Configs (on definition), the Structs and enums of a
stage's signature and of the module that defines the stage (on decoration), every class this
process itself encoded, and classes passed to :func:`register_value_type`. Anything else is an
:class:`UntrustedTypeError`, never an import.
"""

from __future__ import annotations

import enum
import sys
import typing
from typing import Any

import msgspec

_ALLOWED: dict[str, type] = {}


class UntrustedTypeError(TypeError):
    """Stored data names a class that this process has not registered."""


def type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_value_class(obj: Any) -> bool:
    return isinstance(obj, type) and (issubclass(obj, msgspec.Struct | enum.Enum))


def register_value_type(cls: type) -> type:
    """Allow stored values to be decoded as ``cls`` (a msgspec Struct or an Enum), and the
    Structs and enums its fields name."""
    if not _is_value_class(cls):
        raise TypeError(f"{cls!r} is not a msgspec Struct or Enum class")
    path = type_path(cls)
    if _ALLOWED.get(path) is cls:
        return cls
    _ALLOWED[path] = cls
    if issubclass(cls, msgspec.Struct):
        for annotation in _field_annotations(cls):
            register_annotation(annotation)
    return cls


def _field_annotations(cls: type) -> list[Any]:
    try:
        return list(typing.get_type_hints(cls).values())
    except Exception:  # unresolvable forward references: the field classes register on use
        return []


def register_annotation(annotation: Any) -> None:
    """Register every Struct or Enum class an annotation mentions (``list[X] | None``...)."""
    stack = [annotation]
    while stack:
        item = stack.pop()
        if _is_value_class(item):
            if _ALLOWED.get(type_path(item)) is not item:
                register_value_type(item)
        else:
            stack.extend(typing.get_args(item))


def register_module_types(module_name: str) -> None:
    """Register the Struct and enum classes a (user) module defines at its top level."""
    module = sys.modules.get(module_name)
    for value in vars(module).values() if module is not None else ():
        if _is_value_class(value) and value.__module__ == module_name:
            register_value_type(value)


def value_type(path: str) -> type:
    """The registered class stored data names; :class:`UntrustedTypeError` otherwise."""
    cls = _ALLOWED.get(path)
    if cls is None:
        raise UntrustedTypeError(
            f"stored data names the class {path!r}, which this process has not registered; "
            "decoding never imports code named by stored data. Import the module that defines "
            "it (its stages register it), or call physflow.register_value_type(cls)."
        )
    return cls
