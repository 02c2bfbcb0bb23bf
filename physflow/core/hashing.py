"""Value digests: one registry of type-tagged rules feeding blake3 (see docs/architecture.md).

Every rule writes a type tag before the value, so ``1``, ``1.0``, ``"1"`` and ``True`` never
collide, and arrays contribute dtype (with byte order) and shape before their bytes. Unknown
types are an error: a digest built from ``str(x)``, ``hash(x)`` or pickle bytes can produce false
cache hits, the worst bug a cache can have. Rules live in :mod:`.value_rules`,
:mod:`.array_rules` and (loaded lazily) :mod:`.optional_rules`.
"""

from __future__ import annotations

from typing import Any

from . import array_rules, optional_rules, value_rules  # noqa: F401  (they register rules)
from .digest_registry import (
    Feeder,
    UnhashableValueError,
    register_digest_rule,
    register_lazy_rules,
)


def digest(value: Any) -> str:
    """The content digest of ``value``: ``"b3:" + 64 hex digits``.

    Equal values give equal digests across processes and machines; any change of type, dtype,
    shape, byte order, field or element gives a different one. Values that contain themselves,
    or nest deeper than Python's recursion limit, raise :class:`UnhashableValueError`.
    """
    return digest_with_memo(value, None)


def digest_with_memo(value: Any, memo: dict[int, bytes] | None) -> str:
    """Like :func:`digest`, reusing already-known hashes of large leaves (by object identity).

    Stores hash large arrays while writing them; this avoids hashing them a second time when the
    digest of a container holding them is needed.
    """
    feeder = Feeder(memo)
    try:
        feeder.feed(value)
    except RecursionError:
        raise UnhashableValueError(
            f"a {type(value).__qualname__} nested too deeply to digest; flatten it"
        ) from None
    return feeder.hexdigest()


__all__ = [
    "UnhashableValueError",
    "digest",
    "digest_with_memo",
    "register_digest_rule",
    "register_lazy_rules",
]
