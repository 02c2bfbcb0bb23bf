"""References to node outputs (``"node"``, ``"node.output"``, ``"node.output.key"``) and the
single-output convention, checked in one place for pipelines, specs, scans, harnesses and
manifests.

The convention: a stage declared without ``outputs=`` has exactly one output, named
:data:`SINGLE_OUTPUT` (``"value"``), and ``"node"`` means that value. A stage declared with
``outputs=[...]`` has named outputs and ``"node"`` means all of them as a dict. ``"value"`` is
reserved (a stage cannot declare it), so "single output" always means ``outputs == ("value",)``
and inputs, keys, ``res[...]``, ``res.digest(...)`` and manifests agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .suggest import closest, did_you_mean

SINGLE_OUTPUT = "value"
SINGLE = (SINGLE_OUTPUT,)


def is_single(outputs: Sequence[str]) -> bool:
    """Whether a node with these output names has the single unnamed output."""
    return tuple(outputs) == SINGLE


@dataclass(frozen=True)
class Ref:
    """A reference to a node's output: ``node`` (its only output, or all) or ``node.out``;
    ``key`` names an entry of a dict output where allowed (scan collect, harness metrics)."""

    node: str
    output: str | None = None
    key: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        known = _PARSED.get(text) if cls is Ref else None
        if known is not None:  # refs are immutable: one per text (pipelines rebuilt in loops)
            return known
        node, _, rest = text.partition(".")
        output, _, key = rest.partition(".")
        ref = cls(node, output or None, key or None)
        if cls is Ref:
            if len(_PARSED) >= 1 << 16:
                _PARSED.clear()
            _PARSED[text] = ref
        return ref

    def __str__(self) -> str:
        parts = [self.node, self.output, self.key]
        return ".".join(p for p in parts if p is not None)

    @property
    def output_ref(self) -> Ref:
        """This reference without its dict key."""
        return Ref(self.node, self.output)


_PARSED: dict[str, Ref] = {}


class RefError(ValueError):
    """A reference names no node or no output; ``suggestions`` are valid names close to it."""

    def __init__(self, message: str, node: str, suggestions: list[str]) -> None:
        super().__init__(message)
        self.node = node
        self.suggestions = suggestions


def resolve_ref(
    text: object, outputs_of: Mapping[str, Sequence[str]], *, allow_key: bool = False
) -> Ref:
    """Parse ``text`` and check it against ``outputs_of`` (node id -> output names)."""
    if not isinstance(text, str) or not text or text.startswith("."):
        raise RefError(f"expected 'node' or 'node.output', got {text!r}", "", [])
    ref = Ref.parse(text)
    if ref.key is not None and not allow_key:
        raise RefError(
            f"'{text}': expected 'node' or 'node.output' (one dot at most)", ref.node, []
        )
    outputs = outputs_of.get(ref.node)
    if outputs is None:
        raise RefError(
            f"'{text}': unknown node '{ref.node}'.{did_you_mean(ref.node, outputs_of)} "
            f"Nodes: {', '.join(outputs_of) or '(none)'}.",
            ref.node,
            closest(ref.node, outputs_of),
        )
    if ref.output is not None and ref.output not in outputs:
        hint = (
            f"It has a single output; refer to it as '{ref.node}'."
            if is_single(outputs)
            else f"Its outputs are: {', '.join(outputs)}."
        )
        raise RefError(
            f"'{text}': node '{ref.node}' has no output '{ref.output}'."
            f"{did_you_mean(ref.output, outputs)} {hint}",
            ref.node,
            closest(ref.output, outputs),
        )
    return ref
