"""Config checks shared by the stage packs: msgspec validates types when decoding YAML (and
dicts), but configs built in Python as ``TxConfig(...)`` are checked here, from their
``__post_init__``, with messages naming the class, field and what would be valid. In YAML a
failed check becomes a SpecError with file:line."""

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
    lt: float | None = None,
    le: float | None = None,
) -> None:
    value = getattr(config, field)
    if value is None:
        return
    bad = (
        (gt is not None and not value > gt)
        or (ge is not None and not value >= ge)
        or (lt is not None and not value < lt)
        or (le is not None and not value <= le)
    )
    if bad:
        bounds = " and ".join(
            f"{op} {b}" for op, b in ((">", gt), (">=", ge), ("<", lt), ("<=", le)) if b is not None
        )
        raise ValueError(f"{type(config).__name__}.{field} = {value!r} must be {bounds}")


def check_interval(config: Any, field: str, *, gt: float | None = None) -> None:
    """A [low, high] pair with low <= high (and low > gt when given)."""
    lo, hi = getattr(config, field)
    if not lo <= hi or (gt is not None and not lo > gt):
        extra = f" and low > {gt}" if gt is not None else ""
        raise ValueError(
            f"{type(config).__name__}.{field} = [{lo!r}, {hi!r}] must be [low, high] with "
            f"low <= high{extra}"
        )


def check_pairs(config: Any, field: str) -> None:
    """A list of [a, b] pairs (positions), or None."""
    value = getattr(config, field)
    if value is None:
        return
    for i, item in enumerate(value):
        if len(item) != 2:
            raise ValueError(
                f"{type(config).__name__}.{field}[{i}] = {list(item)!r} must be a pair [a, b]"
            )
