"""Building a Pipeline from a spec's data, each problem raised at the line that causes it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from ..core.graphs import CycleError, toposort
from ..core.names import is_node_id
from ..core.refs import RefError, resolve_ref
from ..core.suggest import closest
from .graph import Pipeline, PipelineError
from .overrides import passthrough_hook
from .spec_scan import parse_scan
from .spec_stages import load_stage
from .spec_types import LoadedSpec
from .spec_yaml import Path_, SpecError, _Document, _got, _split_msgspec_error, type_name
from .stage import Stage

TOP_LEVEL_KEYS = ("name", "seed", "description", "stages", "scan", "dataset")
NODE_KEYS = ("stage", "config", "inputs")


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


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
                    suggestions=closest(key, TOP_LEVEL_KEYS),
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
        scan = parse_scan(self.doc, data["scan"], pipeline, resolved) if "scan" in data else None
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
                    suggestions=closest(node_id, stages),
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
        if not is_node_id(node_id):
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
                    suggestions=closest(key, NODE_KEYS),
                )
        if "stage" not in body:
            raise self.doc.error(
                "missing 'stage:' (an import path 'package.module:function' or a registered "
                "name; see 'physflow stages')",
                base,
                node=node_id,
                field="stage",
            )
        stage = load_stage(self.doc, node_id, body["stage"], (*base, "stage"))
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
                    suggestions=closest(name, known),
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
                    suggestions=closest(key, fields),
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
        outputs_of = {n: stage.output_names for n, stage in resolved.items()}
        for node_id, body in stages.items():
            for name, target in (body.get("inputs") or {}).items():
                try:
                    resolve_ref(target, outputs_of)
                except RefError as exc:
                    raise self.doc.error(
                        f"input '{name}' refers to {exc}",
                        ("stages", node_id, "inputs", name),
                        node=node_id,
                        field=str(name),
                    ) from None
        deps = {
            n: [str(t).partition(".")[0] for t in (b.get("inputs") or {}).values()]
            for n, b in stages.items()
        }
        try:
            toposort(deps)
        except CycleError as exc:
            first, second = exc.cycle[0], exc.cycle[1]
            edge = next(
                k for k, t in stages[first]["inputs"].items() if t.partition(".")[0] == second
            )
            raise self.doc.error(
                f"cycle {' -> '.join(reversed(exc.cycle))}; remove one of these connections",
                ("stages", first, "inputs", edge),
                node=first,
                field=edge,
            ) from None
