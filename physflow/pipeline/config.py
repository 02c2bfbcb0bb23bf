"""The base class of every stage config: an immutable, typed, strictly validated msgspec Struct."""

from __future__ import annotations

from typing import Any

import msgspec


class _ConfigMeta(msgspec.StructMeta):
    """Makes every subclass keyword-only (msgspec applies ``kw_only`` per class otherwise)."""

    def __new__(mcls, name: str, bases: tuple, namespace: dict, **kwargs: Any) -> Any:
        kwargs.setdefault("kw_only", True)
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class Config(msgspec.Struct, metaclass=_ConfigMeta, frozen=True, forbid_unknown_fields=True):
    """Base for stage configs.

    Frozen so a config cannot change after its digest is taken; keyword-only so field order
    never matters to callers (and fields with defaults may precede required ones); unknown
    fields are rejected so a typo in YAML is an error, not a silently ignored setting.
    """
