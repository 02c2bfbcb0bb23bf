"""Reading a spec's YAML with the position of every key and value, and :class:`SpecError`,
whose one-line message names file:line:column, node, field and the closest valid names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import PipelineError


class SpecError(PipelineError):
    """A spec cannot be loaded; ``str()`` is one line that says where and what to change."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        node: str | None = None,
        field: str | None = None,
        expected: str | None = None,
        got: Any = None,
        suggestions: list[str] | None = None,
    ) -> None:
        self.file, self.line, self.column = file, line, column
        self.node, self.field = node, field
        self.expected, self.got = expected, got
        self.suggestions = list(suggestions or [])
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = []
        if self.node is not None:
            parts.append(f"node '{self.node}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        subject = ", ".join(parts)
        body = f"{subject + ': ' if subject else ''}{self.detail}"
        # command-line problems (--set) have no file: the option itself is the location
        text = body if self.file is None and self.detail.startswith("--") else f"{where}: {body}"
        if self.suggestions:
            if not text.endswith((".", "?", ")")):
                text += "."
            text += f" Did you mean {' or '.join(repr(s) for s in self.suggestions)}?"
        # one line, whatever names or values from the file it quotes
        return text.replace("\r", "\\r").replace("\n", "\\n")


Path_ = tuple[Any, ...]


@dataclass
class _Marks:
    """Positions of keys and values in the YAML document, by path of keys/indices."""

    keys: dict[Path_, yaml.Mark] = field(default_factory=dict)
    values: dict[Path_, yaml.Mark] = field(default_factory=dict)

    def value(self, path: Path_) -> yaml.Mark | None:
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path)

    def key(self, path: Path_) -> yaml.Mark | None:
        return self.keys.get(path) or self.value(path)


#: libyaml's safe loader when PyYAML has it (several times faster; the same nodes and marks).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Turns a key's scalar node into its typed value (``1`` -> 1), one for all documents.
_KEY_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class _Document:
    """The parsed data plus positions, and a way to raise errors that point into it."""

    def __init__(self, text: str, file: str) -> None:
        from .spec_limits import LimitError, check_expansion, check_text

        self.file = file
        self.marks = _Marks()
        try:
            check_text(text)
        except LimitError as exc:
            raise SpecError(exc.message, file=file, line=exc.line, column=exc.column) from None
        loader = _LOADER(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                check_expansion(node)
            self.data = loader.construct_document(node) if node is not None else None
        except LimitError as exc:
            raise SpecError(exc.message, file=file, line=exc.line, column=exc.column) from None
        except RecursionError:  # a limit above should have caught it; never a traceback
            raise SpecError("the YAML is nested too deeply to read", file=file) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            raise SpecError(f"invalid YAML: {problem}", file=file, **_pos(mark)) from None
        except yaml.YAMLError as exc:
            raise SpecError(f"invalid YAML: {exc}", file=file) from None
        finally:
            loader.dispose()
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: Path_, key_mark: yaml.Mark | None = None) -> None:
        # A block mapping/sequence starts on the line after its key: point at the key instead.
        collection = isinstance(node, yaml.MappingNode | yaml.SequenceNode)
        self.marks.values[path] = key_mark if collection and key_mark else node.start_mark
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if key in seen:
                    raise SpecError(
                        f"duplicate key '{key}' (first defined on line {seen[key].line + 1}); "
                        "keep one",
                        file=self.file,
                        **_pos(key_node.start_mark),
                    )
                seen[key] = key_node.start_mark
                typed = self._typed_key(key_node)
                self.marks.keys[(*path, typed)] = key_node.start_mark
                self._walk(value_node, (*path, typed), key_node.start_mark)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    @staticmethod
    def _typed_key(key_node: yaml.Node) -> Any:
        if isinstance(key_node, yaml.ScalarNode):
            try:
                return _KEY_CONSTRUCTOR.construct_object(key_node)
            except yaml.YAMLError:
                return key_node.value
        return None

    def error(self, message: str, path: Path_, *, at: str = "value", **info: Any) -> SpecError:
        mark = self.marks.key(path) if at == "key" else self.marks.value(path)
        return SpecError(message, file=self.file, **_pos(mark), **info)


def _pos(mark: yaml.Mark | None) -> dict[str, int | None]:
    if mark is None:
        return {"line": None, "column": None}
    return {"line": mark.line + 1, "column": mark.column + 1}


# -- type descriptions ----------------------------------------------------------------------------


_NOUNS = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("multiple_of", "a multiple of"))


def _bound(value: Any) -> str:
    """A bound as a reader writes it: ``0`` for ``0`` and ``0.0`` alike (typing caches equal
    ``Annotated`` types, so which of the two a class sees depends on import order)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _constraints(meta: Any) -> list[str]:
    """``msgspec.Meta(gt=0, max_length=3)`` -> ``['> 0', 'of length <= 3']``."""
    found = [
        f"{sign} {_bound(getattr(meta, attr))}"
        for attr, sign in _BOUNDS
        if getattr(meta, attr, None) is not None
    ]
    if getattr(meta, "min_length", None) is not None:
        found.append(f"of length >= {meta.min_length}")
    if getattr(meta, "max_length", None) is not None:
        found.append(f"of length <= {meta.max_length}")
    if getattr(meta, "pattern", None) is not None:
        found.append(f"matching {meta.pattern!r}")
    return found


def type_name(tp: Any) -> str:
    """A short, readable name of a type annotation: ``float``, ``list[int]``, ``one of 'a',
    'b'``, and for constrained types the constraint in words (``an integer > 0`` instead of
    ``Annotated[int, msgspec.Meta(gt=0)]``)."""
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        base = args[0]
        bounds = [c for meta in args[1:] for c in _constraints(meta)]
        if not bounds:
            return type_name(base)
        noun = _NOUNS.get(base) or type_name(base)
        return f"{noun} {' and '.join(bounds)}"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if tp is type(None) or tp is None:
        return "None"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, type) and not args:
        return tp.__name__
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(type_name(a) for a in args)
    if origin is not None and args:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]"
    text = str(tp)
    text = re.sub(r"\btyping\.", "", text)
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    return text.replace("NoneType", "None")


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_MSGSPEC_PATH = re.compile(r" - at `\$((?:\.[^.`\[]+|\[\d+\])*)`$")


def _split_msgspec_error(text: str) -> tuple[str, list[Any]]:
    """msgspec's 'Expected `float`, got `str` - at `$.a[0]`' -> (message, ['a', 0])."""
    match = _MSGSPEC_PATH.search(text)
    if not match:
        return text, []
    path: list[Any] = []
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", match.group(1)):
        path.append(part[0] if part[0] else int(part[1]))
    return text[: match.start()], path
