"""Limits that keep a hostile or broken spec from hanging or crashing the loader.

A spec is small text, but YAML can make it large: nine anchors of nine aliases each expand a
400-byte file to 9**9 values ("billion laughs"), and 1,000 nested brackets exhaust Python's
recursion limit in PyYAML's composer. So, before anything walks the data: the text is bounded,
undecodable bytes and control characters are reported with their line, nesting is measured on
the token stream (the scanner is iterative), and the size the aliases expand to is computed on
the composed node graph, each node once. Every violation is a one-line SpecError with a line.
"""

from __future__ import annotations

from typing import Any

import yaml

#: the largest spec text read (a spec is configuration, not data: put data in files)
MAX_BYTES = 2**20
#: the deepest nesting of mappings and sequences
MAX_DEPTH = 64
#: the most values a spec may expand to (aliases counted as often as they are used)
MAX_VALUES = 100_000

_OPEN = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


class LimitError(Exception):
    """(message, line, column) of the first violation; turned into a SpecError by the caller."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def _line_col(text: str | bytes, offset: int) -> tuple[int, int]:
    newline = "\n" if isinstance(text, str) else b"\n"
    head = text[:offset]
    line = head.count(newline) + 1  # type: ignore[arg-type]
    return line, offset - (head.rfind(newline) + 1) + 1  # type: ignore[arg-type]


def decode_spec(data: bytes) -> str:
    """UTF-8 text of a spec file (a BOM is allowed), or LimitError naming the bad byte's line."""
    if len(data) > MAX_BYTES:
        raise LimitError(
            f"the file is {len(data):,} bytes; a spec is at most {MAX_BYTES:,} bytes "
            "(keep data in files and refer to them from configs)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _line_col(data, exc.start)
        raise LimitError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded; save the spec "
            "as UTF-8",
            line,
            column,
        ) from None


#: the scanner used for the checks: libyaml's when PyYAML has it (10x faster, iterative)
_SCAN_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_text(text: str) -> None:
    """Size, control characters and nesting depth, before PyYAML composes anything."""
    if len(text) > MAX_BYTES:
        raise LimitError(f"the spec is {len(text):,} characters; at most {MAX_BYTES:,} are read")
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line, column = _line_col(text, bad.start())
        raise LimitError(
            f"control character U+{ord(bad.group()):04X} is not allowed in YAML text; remove it",
            line,
            column,
        )
    try:
        _check_depth(text, _SCAN_LOADER)
    except yaml.YAMLError:
        try:  # libyaml stops at its own nesting limit without saying where ours was passed
            _check_depth(text, yaml.SafeLoader)
        except yaml.YAMLError:
            return  # malformed YAML: the composer reports it with its position


def _check_depth(text: str, loader: Any) -> None:
    depth = 0
    for token in yaml.scan(text, Loader=loader):
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                mark = token.start_mark
                raise LimitError(
                    f"nested more than {MAX_DEPTH} levels deep; a spec's structure is shallow "
                    "(stages -> node -> config -> field)",
                    mark.line + 1,
                    mark.column + 1,
                )
        elif isinstance(token, _CLOSE):
            depth -= 1


def check_expansion(root: Any) -> None:
    """Count the values the composed document expands to (each shared node counted as often
    as it is used, computed once per node); LimitError past :data:`MAX_VALUES`."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # nodes whose children are being counted
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not done:
            if id(node) in open_:
                continue  # reached again through a sibling: counted when it closes
            open_.add(id(node))
            stack.append((node, True))
            for child in children:
                if id(child) in open_:
                    mark = child.start_mark
                    raise LimitError(
                        "an alias refers to a value that contains it (a recursive anchor); "
                        "a spec must be a tree",
                        mark.line + 1,
                        mark.column + 1,
                    )
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_.discard(id(node))
        size = 1 + sum(sizes.get(id(c), 0) for c in children)
        sizes[id(node)] = size
        if size > MAX_VALUES:
            mark = node.start_mark
            raise LimitError(
                f"this expands to more than {MAX_VALUES:,} values (YAML anchors and *aliases "
                "repeat what they refer to); write the values out or use fewer aliases",
                mark.line + 1,
                mark.column + 1,
            )


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_value(text: str) -> Any:
    """A command-line value read as YAML (``--set``, ``--grid``) under the same limits as a
    spec; raises LimitError (bad value) or yaml.YAMLError (not YAML: use the text as is)."""
    check_text(text)
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        check_expansion(node)
    return yaml.safe_load(text)
