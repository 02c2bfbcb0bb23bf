"""Config checks for the Python API: msgspec validates types only when decoding (YAML, dicts),
so configs built directly as ``FilterConfig(...)`` check their choices and ranges here."""

from __future__ import annotations

from typing import Any, get_args


def check_choice(config: Any, field: str, literal: Any) -> None:
    value = getattr(config, field)
    choices = get_args(literal)
    if value not in choices:
        raise ValueError(
            f"{type(config).__name__}.{field} = {value!r} is not valid; "
            f"use one of {', '.join(repr(c) for c in choices)}"
        )


def check_range(
    config: Any,
    field: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> None:
    value = getattr(config, field)
    bad = (
        (gt is not None and not value > gt)
        or (ge is not None and not value >= ge)
        or (le is not None and not value <= le)
    )
    if bad:
        bounds = " and ".join(
            f"{op} {b}" for op, b in ((">", gt), (">=", ge), ("<=", le)) if b is not None
        )
        raise ValueError(f"{type(config).__name__}.{field} = {value!r} must be {bounds}")
