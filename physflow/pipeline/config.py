"""The base class of every stage config: an immutable, typed, strictly validated msgspec Struct."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgspec

from ..core.freeze import deep_freeze
from ..core.value_types import register_value_type

_IMMUTABLE_SCALARS = frozenset({float, int, str, bool, bytes, type(None)})


def freeze_fields(config: msgspec.Struct) -> None:
    """Replace every mutable container field by an immutable equal one (see core/freeze.py)."""
    for name in config.__struct_fields__:
        value = getattr(config, name)
        if type(value) in _IMMUTABLE_SCALARS:  # most fields: nothing to freeze
            continue
        frozen = deep_freeze(value, f"{type(config).__qualname__}.{name}")
        if frozen is not value:
            msgspec.structs.force_setattr(config, name, frozen)


def _freezing(post_init: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """``__post_init__`` that freezes the fields first (then runs the class's own, if any)."""

    if post_init is None:

        def freeze_only(self: Any) -> None:
            freeze_fields(self)

        return freeze_only

    @functools.wraps(post_init)
    def freeze_then(self: Any) -> None:
        freeze_fields(self)
        post_init(self)

    return freeze_then


class _ConfigMeta(msgspec.StructMeta):
    """Makes every subclass keyword-only (msgspec applies ``kw_only`` per class otherwise) and
    deeply immutable: whatever ``__post_init__`` a subclass defines runs after the freeze."""

    def __new__(mcls, name: str, bases: tuple, namespace: dict, **kwargs: Any) -> Any:
        kwargs.setdefault("kw_only", True)
        namespace["__post_init__"] = _freezing(namespace.get("__post_init__"))
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        register_value_type(cls)  # its values may be decoded from the store (value_types.py)
        return cls


class Config(msgspec.Struct, metaclass=_ConfigMeta, frozen=True, forbid_unknown_fields=True):
    """Base for stage configs.

    Frozen, and deeply so (lists, dicts, sets and arrays in fields are replaced by read-only
    equal values), so a config cannot change after its digest is taken; keyword-only so field
    order never matters to callers (and fields with defaults may precede required ones); unknown
    fields are rejected so a typo in YAML is an error, not a silently ignored setting.
    """
