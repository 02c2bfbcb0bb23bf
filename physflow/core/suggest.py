""" "Did you mean ...?": the one helper every error message uses to suggest valid names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(
    name: object, candidates: Iterable[object], n: int = 3, cutoff: float = 0.6
) -> list[str]:
    """Up to ``n`` valid names close to ``name`` (best first)."""
    return difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=cutoff)


def did_you_mean(name: str, candidates: Iterable[object]) -> str:
    """``" Did you mean 'a' or 'b'?"`` for the closest valid names, or ``""``."""
    close = closest(name, candidates)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
