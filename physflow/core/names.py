"""Names that come from disk or users, validated before they become paths or node ids.

A record, plan pointer or manifest read from the store is data written by whoever could write
the store; a digest like ``b3:../x`` must be corrupt data, never a path. Every name that is
turned into a path passes one of these checks first.
"""

from __future__ import annotations

import re

DIGEST_RE = re.compile(r"b3:[0-9a-f]{64}\Z")
HEX_RE = re.compile(r"[0-9a-f]{64}\Z")
#: Node ids: letters, digits, '_' and '-', starting with a letter or '_' (dots separate node
#: and output in references).
NODE_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
#: Run, scan and dataset ids and manifest file stems.
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}\Z")


class InvalidNameError(ValueError):
    """A name read from the store (or given by a user) is not of the expected form."""


def is_digest(text: object) -> bool:
    return isinstance(text, str) and DIGEST_RE.match(text) is not None


def check_digest(text: object, what: str = "digest") -> str:
    """``text`` if it is a ``b3:`` + 64 lowercase hex digest; :class:`InvalidNameError` if not."""
    if not is_digest(text):
        raise InvalidNameError(f"{what} {text!r} is not a physflow digest ('b3:' + 64 hex)")
    return text  # type: ignore[return-value]


def is_hex_key(text: object) -> bool:
    return isinstance(text, str) and HEX_RE.match(text) is not None


def is_run_id(text: object) -> bool:
    return isinstance(text, str) and RUN_ID_RE.match(text) is not None and ".." not in text


def check_run_id(text: object, what: str = "run id") -> str:
    if not is_run_id(text):
        raise InvalidNameError(
            f"{what} {text!r} is not valid: use letters, digits, '_', '-' and '.', starting "
            "with a letter or digit"
        )
    return text  # type: ignore[return-value]


def is_node_id(text: object) -> bool:
    return isinstance(text, str) and NODE_ID_RE.match(text) is not None
