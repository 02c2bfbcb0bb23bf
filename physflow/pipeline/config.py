"""The base class of every stage config: an immutable, typed, strictly validated msgspec Struct."""

from __future__ import annotations

import msgspec


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base for stage configs.

    Frozen so a config cannot change after its digest is taken; keyword-only so field order
    never matters to callers; unknown fields are rejected so a typo in YAML is an error, not a
    silently ignored setting.
    """


def replace_fields(config: msgspec.Struct, changes: dict[str, object]) -> msgspec.Struct:
    """A copy of ``config`` with ``changes`` applied and re-validated through the class."""
    data = msgspec.structs.asdict(config)
    data.update(changes)
    return msgspec.convert(data, type(config), strict=False)
