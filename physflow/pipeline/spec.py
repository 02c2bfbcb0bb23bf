"""YAML pipeline specs: parsed with ``yaml.safe_load`` semantics into msgspec types and a Pipeline.

Every error is a :class:`SpecError` whose message is one line naming the file, line and column,
the node and field, what was expected and, for unknown names, the closest valid ones::

    configs/x.yaml:7:12: node 'noisy', field 'sigma': expected float, got 'abc'

Line numbers come from the composed YAML nodes (``SafeLoader``), so the position points at the
offending key or value, not at the start of the document.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from .graph import _NODE_ID, Pipeline, PipelineError
from .overrides import passthrough_hook
from .stage import Stage

TOP_LEVEL_KEYS = ("name", "seed", "description", "stages", "scan", "dataset")
NODE_KEYS = ("stage", "config", "inputs")

# -- scan block (consumed by physflow.pipeline.scan / scan_cli) ----------------------------------


class SampleSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Seeded random or Sobol sampling of parameter ranges (``{path: [low, high]}``)."""

    ranges: dict[str, tuple[float, float]]
    n: int
    method: Literal["random", "sobol", "halton", "lhs"] = "random"
    seed: int = 0


class PlotSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How ``physflow scan --plot`` draws the result."""

    x: str | None = None
    y: list[str] = []
    logx: bool = False
    logy: bool = False
    title: str | None = None
    output: str | None = None


class ScanSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The ``scan:`` block of a spec.

    ``grid`` axes are crossed, ``zip`` axes advance together (equal lengths), ``points`` lists
    explicit points and ``sample`` draws points from ranges; the last three give one ``point``
    dimension. ``reference`` names a collected output (or an expression over the axes) drawn as
    the theory curve.
    """

    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}
    points: list[dict[str, Any]] = []
    sample: SampleSpec | None = None
    collect: list[str] = []
    mode: Literal["grid", "zip"] | None = None
    reference: str | None = None
    plot: PlotSpec | None = None

    @property
    def axes(self) -> dict[str, list[Any]]:
        """The grid or zip axes (whichever is set), as ``{"node.field": values}``."""
        return dict(self.grid or self.zip)

    @property
    def effective_mode(self) -> str:
        if self.mode is not None:
            return self.mode
        if self.zip:
            return "zip"
        if self.points:
            return "points"
        if self.sample is not None:
            return "sample"
        return "grid"


# -- errors ---------------------------------------------------------------------------------------


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
        text = f"{where}: {subject + ': ' if subject else ''}{self.detail}"
        if self.suggestions:
            if not text.endswith((".", "?", ")")):
                text += "."
            text += f" Did you mean {' or '.join(repr(s) for s in self.suggestions)}?"
        return text


def _closest(name: str, candidates: Any) -> list[str]:
    return difflib.get_close_matches(str(name), [str(c) for c in candidates], n=3, cutoff=0.6)


# -- YAML with positions --------------------------------------------------------------------------

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


class _Document:
    """The parsed data plus positions, and a way to raise errors that point into it."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.marks = _Marks()
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            self.data = loader.construct_document(node) if node is not None else None
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
            loader = yaml.SafeLoader("")
            try:
                return loader.construct_object(key_node)
            except yaml.YAMLError:
                return key_node.value
            finally:
                loader.dispose()
        return None

    def error(self, message: str, path: Path_, *, at: str = "value", **info: Any) -> SpecError:
        mark = self.marks.key(path) if at == "key" else self.marks.value(path)
        return SpecError(message, file=self.file, **_pos(mark), **info)


def _pos(mark: yaml.Mark | None) -> dict[str, int | None]:
    if mark is None:
        return {"line": None, "column": None}
    return {"line": mark.line + 1, "column": mark.column + 1}


# -- type descriptions ----------------------------------------------------------------------------


def type_name(tp: Any) -> str:
    """A short, readable name of a type annotation (``float``, ``list[int]``, ``'a' | 'b'``)."""
    if isinstance(tp, type):
        return tp.__name__
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


# -- loading --------------------------------------------------------------------------------------


@dataclass
class LoadedSpec:
    """A spec as loaded: the pipeline plus its optional scan block and raw data."""

    pipeline: Pipeline
    scan: ScanSpec | None
    data: dict[str, Any]
    file: str
    #: The parsed document: ``doc.error(message, path, at=...)`` raises positioned SpecErrors.
    #: physflow.ml parses the optional ``dataset:`` section (``data["dataset"]``) with it.
    doc: Any = None


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


def resolve_stage_reference(ref: str) -> Stage:
    """A stage from ``package.module:function`` or a registered name (raises LookupError)."""
    from .registry import resolve_registered

    if ":" in ref:
        import importlib

        module_name, _, attr = ref.partition(":")
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    return resolve_registered(ref)


class _Builder:
    def __init__(self, doc: _Document, overrides: Mapping[str, Any]) -> None:
        self.doc = doc
        self.overrides = dict(overrides)
        self.override_origin: dict[Path_, str] = {}

    def err(self, message: str, path: Path_, **info: Any) -> SpecError:
        origin = self._origin(path)
        if origin:
            message = f"{message} (from --set {origin})"
        return self.doc.error(message, path, **info)

    def _origin(self, path: Path_) -> str | None:
        for p, origin in self.override_origin.items():
            if path[: len(p)] == p:
                return origin
        return None

    # top level

    def build(self) -> LoadedSpec:
        data = self.doc.data
        if data is None:
            raise self.doc.error("the spec is empty; it needs at least 'stages:'", ())
        if not _is_mapping(data):
            raise self.doc.error(
                f"a spec is a mapping with keys {', '.join(TOP_LEVEL_KEYS)}, got "
                f"{type(data).__name__}",
                (),
            )
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                raise self.doc.error(
                    f"unknown top-level key '{key}'; valid keys: {', '.join(TOP_LEVEL_KEYS)}.",
                    (key,),
                    at="key",
                    field=str(key),
                    suggestions=_closest(key, TOP_LEVEL_KEYS),
                )
        name = data.get("name", Path(self.doc.file).stem)
        if not isinstance(name, str) or not name:
            raise self.doc.error(
                f"expected a non-empty string, got {_got(name)}", ("name",), field="name"
            )
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise self.doc.error(
                f"expected an int >= 0, got {_got(seed)}",
                ("seed",),
                field="seed",
                expected="int",
                got=seed,
            )
        stages = data.get("stages")
        if stages is None:
            raise self.doc.error("missing 'stages:' (a mapping of node id -> stage)", ())
        if not _is_mapping(stages) or not stages:
            raise self.doc.error(
                f"'stages' must be a non-empty mapping of node id -> {{stage, config, inputs}}, "
                f"got {_got(stages)}",
                ("stages",),
                field="stages",
            )
        for node_id, body in stages.items():  # shorthand "node: stage.name"
            if isinstance(body, str):
                stages[node_id] = {"stage": body}
        self._merge_overrides(stages)
        pipeline = Pipeline(name, seed=seed)
        resolved: dict[str, Stage] = {}
        for node_id, body in stages.items():
            resolved[node_id] = self._node(pipeline, node_id, body)
        self._check_wiring(stages, resolved)
        try:
            pipeline.validate()
        except PipelineError as exc:
            raise self.doc.error(str(exc), ("stages",)) from None
        scan = self._scan(data.get("scan"), pipeline, resolved) if "scan" in data else None
        return LoadedSpec(pipeline, scan, data, self.doc.file, self.doc)

    # overrides: merged into the raw data so they are validated like the file itself

    def _merge_overrides(self, stages: dict[str, Any]) -> None:
        for path, value in self.overrides.items():
            node_id, _, rest = str(path).partition(".")
            if not rest:
                raise self.doc.error(
                    f"--set {path}: not a parameter path; write 'node.field=VALUE'",
                    ("stages",),
                    field=str(path),
                )
            if node_id not in stages:
                raise self.doc.error(
                    f"--set {path}: no node '{node_id}' in this spec",
                    ("stages",),
                    at="key",
                    node=node_id,
                    suggestions=_closest(node_id, stages),
                )
            body = stages[node_id]
            if not _is_mapping(body):
                continue  # reported by _node
            config = body.get("config")
            if config is None:
                config = body["config"] = {}
            if not _is_mapping(config):
                continue
            fields = rest.split(".")
            target = config
            for name in fields[:-1]:
                inner = target.get(name)
                if inner is None:
                    inner = target[name] = {}
                if not _is_mapping(inner):
                    raise self.doc.error(
                        f"--set {path}: '{name}' is not a nested config",
                        ("stages", node_id, "config", name),
                        node=node_id,
                        field=name,
                    )
                target = inner
            target[fields[-1]] = value
            self.override_origin[("stages", node_id, "config", *fields)] = f"{path}={value!r}"

    # nodes

    def _node(self, pipeline: Pipeline, node_id: Any, body: Any) -> Stage:
        base = ("stages", node_id)
        if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
            raise self.doc.error(
                f"node id {node_id!r} is not valid: use letters, digits, '_' or '-', starting "
                "with a letter",
                base,
                at="key",
                node=str(node_id),
            )
        if isinstance(body, str):
            body = {"stage": body}
        if not _is_mapping(body):
            raise self.doc.error(
                f"expected a mapping with keys {', '.join(NODE_KEYS)}, got {_got(body)}",
                base,
                node=node_id,
            )
        for key in body:
            if key not in NODE_KEYS:
                raise self.doc.error(
                    f"unknown key '{key}'; a node has: {', '.join(NODE_KEYS)}.",
                    (*base, key),
                    at="key",
                    node=node_id,
                    field=str(key),
                    suggestions=_closest(key, NODE_KEYS),
                )
        if "stage" not in body:
            raise self.doc.error(
                "missing 'stage:' (an import path 'package.module:function' or a registered "
                "name; see 'physflow stages')",
                base,
                node=node_id,
                field="stage",
            )
        stage = self._stage(node_id, body["stage"], (*base, "stage"))
        config = self._config(node_id, stage, body.get("config"), (*base, "config"))
        inputs = body.get("inputs") or {}
        if not _is_mapping(inputs):
            raise self.doc.error(
                f"expected a mapping of input name -> 'node' or 'node.output', got {_got(inputs)}",
                (*base, "inputs"),
                node=node_id,
                field="inputs",
            )
        known = stage.input_names
        for name, target in inputs.items():
            if name not in known:
                raise self.doc.error(
                    f"stage {stage.name} has no input '{name}'; its inputs are: "
                    f"{', '.join(known) or '(none)'}.",
                    (*base, "inputs", name),
                    at="key",
                    node=node_id,
                    field=str(name),
                    suggestions=_closest(name, known),
                )
            if not isinstance(target, str) or not target:
                raise self.doc.error(
                    f"expected 'node' or 'node.output', got {_got(target)}",
                    (*base, "inputs", name),
                    node=node_id,
                    field=str(name),
                )
        for spec in stage.inputs:
            if spec.required and spec.name not in inputs:
                raise self.doc.error(
                    f"input '{spec.name}' of stage {stage.name} is not connected; add "
                    f"'inputs: {{{spec.name}: <node>}}'",
                    (*base, "inputs") if "inputs" in body else base,
                    node=node_id,
                    field=spec.name,
                )
        try:
            pipeline.add(node_id, stage, config, **inputs)
        except PipelineError as exc:
            raise self.doc.error(str(exc), base, node=node_id) from None
        return stage

    def _stage(self, node_id: str, ref: Any, path: Path_) -> Stage:
        from .registry import UnknownStageError, registered_names

        if not isinstance(ref, str) or not ref:
            raise self.doc.error(
                f"expected an import path 'package.module:function' or a registered name, got "
                f"{_got(ref)}",
                path,
                node=node_id,
                field="stage",
            )
        try:
            stage = resolve_stage_reference(ref)
        except UnknownStageError as exc:
            raise self.doc.error(
                f"unknown stage '{ref}' (not registered; use 'package.module:function' or one "
                "of 'physflow stages')",
                path,
                node=node_id,
                field="stage",
                suggestions=exc.suggestions,
            ) from None
        except ModuleNotFoundError as exc:
            raise self.doc.error(
                f"cannot import module '{exc.name}' for stage '{ref}'",
                path,
                node=node_id,
                field="stage",
            ) from None
        except AttributeError:
            module_name, _, attr = ref.partition(":")
            import importlib

            module = importlib.import_module(module_name)
            names = [k for k, v in vars(module).items() if isinstance(v, Stage)]
            raise self.doc.error(
                f"module '{module_name}' has no stage '{attr}'",
                path,
                node=node_id,
                field="stage",
                suggestions=_closest(attr, names),
            ) from None
        except Exception as exc:
            raise self.doc.error(
                f"cannot load stage '{ref}': {type(exc).__name__}: {exc}",
                path,
                node=node_id,
                field="stage",
                suggestions=_closest(ref, registered_names()) if ":" not in ref else None,
            ) from None
        if not isinstance(stage, Stage):
            raise self.doc.error(
                f"'{ref}' is {'a class' if isinstance(stage, type) else type(stage).__name__}, "
                "not a physflow stage (decorate a function with "
                "@physflow.stage)",
                path,
                node=node_id,
                field="stage",
            )
        return stage

    def _config(self, node_id: str, stage: Stage, raw: Any, path: Path_) -> Any:
        cls = stage.config_type
        if cls is None:
            if raw:
                sets = [o for p, o in self.override_origin.items() if p[: len(path)] == path]
                how = f"do not --set {sets[0].split('=')[0]}" if sets else "remove 'config:'"
                raise self.doc.error(
                    f"stage {stage.name} takes no config; {how}",
                    path,
                    at="key",
                    node=node_id,
                    field="config",
                )
            return None
        if raw is None:
            raw = {}
        if not _is_mapping(raw):
            raise self.doc.error(
                f"expected a mapping of {cls.__qualname__} fields, got {_got(raw)}",
                path,
                node=node_id,
                field="config",
            )
        base = getattr(stage, "default_config", None)  # wrapped stages carry their instance's
        defaults = msgspec.structs.asdict(base) if isinstance(base, cls) else {}
        return self.convert_struct(node_id, cls, raw, path, defaults)

    def convert_struct(
        self, node_id: str, cls: type, raw: dict, path: Path_, defaults: dict | None = None
    ) -> Any:
        """Field by field, so each error points at its own line."""
        fields = {f.name: f for f in msgspec.structs.fields(cls)}
        values: dict[str, Any] = dict(defaults or {})
        for key, value in raw.items():
            fpath = (*path, key)
            if key not in fields:
                raise self.err(
                    f"{cls.__qualname__} has no field '{key}'; fields: {', '.join(fields)}.",
                    fpath,
                    at="key",
                    node=node_id,
                    field=str(key),
                    suggestions=_closest(key, fields),
                )
            ftype = fields[key].type
            if _is_mapping(value) and isinstance(ftype, type) and issubclass(ftype, msgspec.Struct):
                values[key] = self.convert_struct(node_id, ftype, value, fpath)
                continue
            try:
                values[key] = msgspec.convert(value, ftype, strict=False, dec_hook=passthrough_hook)
            except (msgspec.ValidationError, TypeError, ValueError, NotImplementedError) as exc:
                detail, sub = _split_msgspec_error(str(exc))
                message = f"expected {type_name(ftype)}, got {_got(value)}"
                if sub:
                    message += f" ({detail} at {'.'.join(str(s) for s in sub)})"
                raise self.err(
                    message,
                    (*fpath, *sub),
                    node=node_id,
                    field=str(key),
                    expected=type_name(ftype),
                    got=value,
                ) from None
        missing = [n for n, f in fields.items() if f.required and n not in values]
        if missing:
            raise self.err(
                f"{cls.__qualname__} needs field(s) {', '.join(missing)}",
                path,
                node=node_id,
                field=missing[0],
            )
        try:
            return cls(**values)
        except (TypeError, ValueError, msgspec.ValidationError) as exc:
            raise self.err(
                f"invalid {cls.__qualname__}: {exc}", path, node=node_id, field="config"
            ) from None

    def _check_wiring(self, stages: dict[str, Any], resolved: dict[str, Stage]) -> None:
        """References to unknown nodes/outputs and cycles, each at the line that causes it."""
        for node_id, body in stages.items():
            if isinstance(body, str):
                continue
            for name, target in (body.get("inputs") or {}).items():
                path = ("stages", node_id, "inputs", name)
                up, _, output = target.partition(".")
                if up not in resolved:
                    raise self.doc.error(
                        f"input '{name}' refers to unknown node '{up}'",
                        path,
                        node=node_id,
                        field=str(name),
                        suggestions=_closest(up, resolved),
                    )
                names = resolved[up].output_names
                if output and output not in names:
                    declared = resolved[up].outputs
                    hint = (
                        f"its outputs are: {', '.join(declared)}"
                        if declared
                        else f"it has a single output; write '{up}'"
                    )
                    raise self.doc.error(
                        f"input '{name}' refers to output '{output}' of node '{up}', which has "
                        f"no such output; {hint}",
                        path,
                        node=node_id,
                        field=str(name),
                        suggestions=_closest(output, names),
                    )
        cycle = _find_cycle(
            {
                n: [
                    t.partition(".")[0]
                    for t in ((b.get("inputs") or {}) if _is_mapping(b) else {}).values()
                ]
                for n, b in stages.items()
            }
        )
        if cycle:
            first = cycle[0]
            body = stages[first]
            edge = next(k for k, t in body["inputs"].items() if t.partition(".")[0] == cycle[1])
            raise self.doc.error(
                f"cycle {' -> '.join(reversed(cycle))}; remove one of these connections",
                ("stages", first, "inputs", edge),
                node=first,
                field=edge,
            )

    # scan block

    def _scan(self, raw: Any, pipeline: Pipeline, resolved: dict[str, Stage]) -> ScanSpec:
        base = ("scan",)
        if not _is_mapping(raw):
            raise self.doc.error(
                f"expected a mapping (grid/zip/points/sample/collect/...), got {_got(raw)}",
                base,
                field="scan",
            )
        allowed = ScanSpec.__struct_fields__
        for key in raw:
            if key not in allowed:
                raise self.doc.error(
                    f"unknown scan key '{key}'; valid keys: {', '.join(allowed)}.",
                    (*base, key),
                    at="key",
                    field=str(key),
                    suggestions=_closest(key, allowed),
                )
        try:
            spec = msgspec.convert(raw, ScanSpec, strict=False)
        except msgspec.ValidationError as exc:
            detail, sub = _split_msgspec_error(str(exc))
            raise self.doc.error(
                f"{detail}", (*base, *sub), field=".".join(str(s) for s in sub) or "scan"
            ) from None
        for block in ("grid", "zip"):
            for path in getattr(spec, block):
                self._check_param(path, pipeline, (*base, block, path))
        for i, point in enumerate(spec.points):
            for path in point:
                self._check_param(path, pipeline, (*base, "points", i, path))
        if spec.sample is not None:
            for path, (low, high) in spec.sample.ranges.items():
                self._check_param(path, pipeline, (*base, "sample", "ranges", path))
                if not low < high:
                    raise self.doc.error(
                        f"range [{low}, {high}] must have low < high",
                        (*base, "sample", "ranges", path),
                        field=path,
                    )
            if spec.sample.n < 1:
                raise self.doc.error("n must be >= 1", (*base, "sample", "n"), field="n")
        if spec.zip:
            lengths = {k: len(v) for k, v in spec.zip.items()}
            if len(set(lengths.values())) > 1:
                raise self.doc.error(
                    f"zip axes must have equal lengths, got {lengths}", (*base, "zip"), field="zip"
                )
        for i, ref in enumerate(spec.collect):
            self._check_ref(ref, resolved, (*base, "collect", i), "collect")
        return spec

    def _check_param(self, path: str, pipeline: Pipeline, where: Path_) -> None:
        """A scan axis must be 'seed' or an existing 'node.field[.sub]' config path."""
        if path == "seed":
            return
        node_id, _, rest = path.partition(".")
        node = pipeline.nodes.get(node_id)
        if node is None:
            raise self.doc.error(
                f"scan axis '{path}': no node '{node_id}'",
                where,
                at="key",
                node=node_id,
                field=path,
                suggestions=_closest(node_id, pipeline.nodes),
            )
        if not rest or node.config is None:
            raise self.doc.error(
                f"scan axis '{path}' must be 'seed' or 'node.field' of a node with a config",
                where,
                at="key",
                node=node_id,
                field=path,
            )
        cls: Any = type(node.config)
        for name in rest.split("."):
            if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
                raise self.doc.error(
                    f"scan axis '{path}': '{name}' is not inside a nested config",
                    where,
                    at="key",
                    node=node_id,
                    field=name,
                )
            if name not in cls.__struct_fields__:
                raise self.doc.error(
                    f"scan axis '{path}': {cls.__qualname__} has no field '{name}'",
                    where,
                    at="key",
                    node=node_id,
                    field=name,
                    suggestions=_closest(name, cls.__struct_fields__),
                )
            cls = next(f.type for f in msgspec.structs.fields(cls) if f.name == name)

    def _check_ref(self, ref: Any, resolved: dict[str, Stage], where: Path_, what: str) -> None:
        if not isinstance(ref, str):
            raise self.doc.error(
                f"expected 'node' or 'node.output', got {_got(ref)}", where, field=what
            )
        node_id, _, output = ref.partition(".")
        if node_id not in resolved:
            raise self.doc.error(
                f"{what} '{ref}': no node '{node_id}'",
                where,
                node=node_id,
                field=what,
                suggestions=_closest(node_id, resolved),
            )
        names = resolved[node_id].output_names
        if output and output.partition(".")[0] not in names:
            raise self.doc.error(
                f"{what} '{ref}': node '{node_id}' has no output '{output}'",
                where,
                node=node_id,
                field=what,
                suggestions=_closest(output, names),
            )


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle as [a, b, ..., a] following input edges (a depends on b), or None."""
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in graph.get(n, ()):
            if m not in graph:
                continue
            if state.get(m) == 1:
                return [*path[path.index(m) :], m]
            if m not in state:
                found = visit(m, path)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state:
            found = visit(n, [])
            if found:
                return found
    return None


def _spec_digest(text: str, overrides: Mapping[str, Any]) -> str:
    from .hashing import UnhashableValueError, digest, digest_bytes_of

    try:
        extra = digest(dict(sorted((str(k), v) for k, v in overrides.items())))
    except UnhashableValueError:
        extra = repr(sorted(overrides.items()))
    return digest_bytes_of("physflow.spec.v1", text, extra)


def load_spec_full(
    path: str | Path, overrides: Mapping[str, Any] | None = None, *, text: str | None = None
) -> LoadedSpec:
    """Parse and check a spec file; every problem raises :class:`SpecError`."""
    file = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError("spec file not found", file=file) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read spec: {exc}", file=file) from None
    overrides = dict(overrides or {})
    loaded = _Builder(_Document(text, file), overrides).build()
    loaded.pipeline.spec_path = str(Path(file).resolve()) if Path(file).exists() else file
    loaded.pipeline.spec_digest = _spec_digest(text, overrides)
    return loaded


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Pipeline:
    """The Pipeline described by a YAML spec; ``overrides`` are ``{"node.field": value}``."""
    return load_spec_full(path, overrides).pipeline


def load_spec_with_scan(
    path: str | Path, overrides: Mapping[str, Any] | None = None
) -> tuple[Pipeline, ScanSpec | None]:
    """The Pipeline and its ``scan:`` block (None when the spec has none)."""
    loaded = load_spec_full(path, overrides)
    return loaded.pipeline, loaded.scan


def parse_set_option(text: str) -> tuple[str, Any]:
    """``node.field=VALUE`` -> (path, value); VALUE is read with ``yaml.safe_load``
    (so ``0.5`` is a float, ``[1, 2]`` a list, ``abc`` a string) and later converted by the
    config class."""
    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise SpecError(f"--set {text!r}: expected node.field=VALUE", field=text)
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return path, parsed
