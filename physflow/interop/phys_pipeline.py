"""Run an existing phys-pipeline 2.0 ``PipelineStage`` as a physflow node, stage by stage.

``pf.from_phys_pipeline(GainStage(GainConfig(gain=2.0)))`` returns a physflow
:class:`~physflow.pipeline.stage.Stage` with one optional input ``state`` and two outputs,
``state`` and ``metrics``. Choices, and why:

- **Config.** The pydantic ``StageConfig`` is mirrored by a physflow Config (a msgspec Struct,
  one field per pydantic field, defaulting to the instance's values). Its digest follows
  physflow's rules, so numpy arrays count by dtype + shape + bytes; phys-pipeline's own
  ``json.dumps(default=str)`` hash makes two 10,000-element arrays that differ in one element
  collide. ``--set node.field=...`` and scans work on these fields; the pydantic model is
  rebuilt (and validated) inside the stage.
- **State.** A phys-pipeline ``State`` is stored as :class:`StoredState`: its class path plus
  its attributes (``vars(state)``), encoded by physflow's tagged tree (arrays become zarr
  objects). No pickle. The digest covers every attribute (``SimpleState.hashable_repr`` ignores
  most of ``meta``). Attributes without a physflow codec are refused with a clear error.
  Downstream interop stages rebuild the State with :meth:`StoredState.to_state`; a plain value
  (e.g. a numpy array from a native stage) entering ``state`` becomes ``SimpleState(payload=...)``.
- **Code.** The stage's class source and its pydantic config class source (validators can
  transform values) are part of the fingerprint (plus ``version`` and ``deps``).
- **Executors.** Serial and threads always. For processes/dask, bind the stage to a module
  attribute and pass its path as ``name``
  (``gain = from_phys_pipeline(GainStage(cfg), name="mypkg.mod:gain")``) so workers import it.
- **Defaults.** ``Pipeline.add(node, stage)`` without a config uses the wrapped instance's
  config (``stage.default_config``); a mapping overrides some fields of the class defaults.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ..core.hashing import UnhashableValueError, digest
from ..pipeline.config import Config
from ..pipeline.stage import InputSpec, Stage, StageDefinitionError

OUTPUTS = ("state", "metrics")
_CONFIG_CLASSES: dict[type, type] = {}


class StoredState(msgspec.Struct, frozen=True):
    """A phys-pipeline ``State`` as a storable value: class path + attributes."""

    cls: str
    fields: dict[str, Any]

    @classmethod
    def from_state(cls, state: Any) -> StoredState:
        t = type(state)
        if hasattr(state, "__dict__"):
            attrs = dict(vars(state))
        else:
            slots = [s for k in t.__mro__ for s in getattr(k, "__slots__", ())]
            attrs = {s: getattr(state, s) for s in slots if hasattr(state, s)}
        fields = {k: _encode(v) for k, v in attrs.items()}
        for name, value in fields.items():
            try:
                digest(value)
            except UnhashableValueError as exc:
                raise TypeError(
                    f"{t.__qualname__}.{name} is a {type(value).__qualname__}, which physflow "
                    "cannot store; keep State attributes to numbers, strings, numpy arrays, "
                    f"lists/dicts of these or msgspec Structs ({exc})"
                ) from None
        return cls(f"{t.__module__}:{t.__qualname__}", fields)

    def to_state(self) -> Any:
        """A fresh State object of the original class with these attributes."""
        module, _, qualname = self.cls.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        state = obj.__new__(obj)
        for name, value in self.fields.items():
            object.__setattr__(state, name, _decode(value))
        return state

    @property
    def payload(self) -> Any:
        """``SimpleState.payload`` (None for other State classes)."""
        return self.fields.get("payload")


def _is_state(value: Any) -> bool:
    from phys_pipeline import State

    return isinstance(value, State)


def _encode(value: Any) -> Any:
    if _is_state(value):
        return StoredState.from_state(value)
    if type(value) is dict:
        return {k: _encode(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_encode(v) for v in value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, StoredState):
        return value.to_state()
    if type(value) is dict:
        return {k: _decode(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_decode(v) for v in value)
    return value


def _field_type(annotation: Any) -> Any:
    """The annotation when msgspec can validate it (and numpy arrays), else Any."""
    import numpy as np

    if annotation is np.ndarray:
        return np.ndarray
    try:
        info = msgspec.inspect.type_info(annotation)
    except (TypeError, ValueError):
        return Any
    return Any if _has_custom(info) else annotation


def _has_custom(info: Any) -> bool:
    if isinstance(info, msgspec.inspect.CustomType):
        return True
    for attr in ("item_type", "key_type", "value_type"):
        inner = getattr(info, attr, None)
        if inner is not None and _has_custom(inner):
            return True
    return any(_has_custom(t) for t in getattr(info, "types", ()) or ())


def config_class(model_cls: type) -> type:
    """The physflow Config mirroring a pydantic ``StageConfig`` class (one per class)."""
    cached = _CONFIG_CLASSES.get(model_cls)
    if cached is not None:
        return cached
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for name, info in model_cls.model_fields.items():
        annotations[name] = _field_type(info.annotation)
        if info.default_factory is not None:
            namespace[name] = msgspec.field(default_factory=info.default_factory)
        elif not info.is_required():
            default = info.default
            namespace[name] = msgspec.field(default_factory=lambda d=default: copy.deepcopy(d))
    path = f"{model_cls.__module__}.{model_cls.__qualname__}"
    cls_name = "PP_" + re.sub(r"\W", "_", path)
    namespace.update(__annotations__=annotations, __module__=__name__, __qualname__=cls_name)
    namespace["__post_init__"] = _validate_with_model
    namespace["__doc__"] = f"physflow mirror of the phys-pipeline config {path}."
    cls = type(Config)(cls_name, (Config,), namespace)
    cls.__qualname__ = cls_name
    cls.model_class = model_cls  # type: ignore[attr-defined]
    globals()[cls_name] = cls  # so configs pickle by reference to a process worker
    _CONFIG_CLASSES[model_cls] = cls
    return cls


def _validate_with_model(config: Any) -> None:
    """Run the pydantic model's validation when the mirror is built (spec load, ``--set``,
    scan points), so a bad value is a spec error at load time, not a failure mid-run."""
    import pydantic

    try:
        to_model(config)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems or str(exc).splitlines()[0]) from None


def mirror_config(model: Any) -> Config:
    """A pydantic config instance -> the equivalent physflow Config instance."""
    cls = config_class(type(model))
    return cls(**{name: getattr(model, name) for name in type(model).model_fields})


def to_model(config: Any) -> Any:
    """The physflow Config back to the pydantic model (validated by pydantic)."""
    model_cls = type(config).model_class
    return model_cls(**{name: getattr(config, name) for name in type(config).__struct_fields__})


def _class_source_dep(cls: type) -> list[Any]:
    try:
        inspect.getsource(cls)
    except (OSError, TypeError):
        warnings.warn(
            f"phys-pipeline stage {cls.__qualname__} has no source file; its code cannot be "
            "fingerprinted, so bump version= whenever it changes",
            RuntimeWarning,
            stacklevel=3,
        )
        return []
    return [cls]


def _instance_state(stage_instance: Any) -> dict[str, Any]:
    """Attributes of the stage object besides ``cfg``: they can change results too."""
    attrs = {k: v for k, v in vars(stage_instance).items() if k != "cfg"}
    try:
        digest(attrs)
    except UnhashableValueError as exc:
        raise StageDefinitionError(
            f"{type(stage_instance).__qualname__} has attributes besides cfg that physflow "
            f"cannot digest ({exc}); they could change results without changing the cache key. "
            "Move them into the config, or keep them to numbers/strings/arrays."
        ) from None
    return attrs


def _as_state(value: Any) -> Any:
    """A stored State back to its class; a plain value (array, number) as a SimpleState."""
    from phys_pipeline.types import SimpleState

    if isinstance(value, StoredState):
        return value.to_state()
    return value if _is_state(value) else SimpleState(payload=value)


def _fan_in_names(stage_cls: type, inputs: Iterable[str] | None) -> tuple[str, ...]:
    if inputs is None:
        return ()
    names = tuple(inputs)
    bad = [n for n in names if not (isinstance(n, str) and n.isidentifier())]
    if not names or bad or len(set(names)) != len(names) or {"rng", "ctx"} & set(names):
        raise StageDefinitionError(
            f"from_phys_pipeline({stage_cls.__qualname__}, inputs=...): give distinct input "
            f"names (Python identifiers, not rng/ctx) for the DagState keys, got {list(names)}"
        )
    return names


def _checked_model(stage_instance: Any) -> Any:
    """The pydantic config of a phys-pipeline stage instance (or a clear error)."""
    from phys_pipeline import PipelineStage

    if not isinstance(stage_instance, PipelineStage):
        raise StageDefinitionError(
            f"from_phys_pipeline needs a phys_pipeline.PipelineStage instance, got "
            f"{type(stage_instance).__qualname__}"
        )
    model = getattr(stage_instance, "cfg", None)
    if model is None or not hasattr(type(model), "model_fields"):
        raise StageDefinitionError(
            f"{type(stage_instance).__qualname__}.cfg must be a pydantic StageConfig, got "
            f"{type(model)}"
        )
    return model


def _stage_deps(
    stage_instance: Any,
    deps: Iterable[Any],
    policy: Mapping[str, Any] | None,
    fan_in: tuple[str, ...],
    initial_state: Any,
) -> list[Any]:
    """Everything besides the config that shapes results: the fingerprint's deps."""
    # The pydantic config class counts too: its validators can transform field values.
    model_cls = type(stage_instance.cfg)
    dep_list = [*_class_source_dep(type(stage_instance)), *_class_source_dep(model_cls), *deps]
    dep_list.append({"instance": _instance_state(stage_instance)})
    if policy is not None:
        dep_list.append({"policy": dict(policy)})
    if fan_in:
        dep_list.append({"fan_in": list(fan_in)})
    if initial_state is not None and not callable(initial_state):
        dep_list.append({"initial_state": StoredState.from_state(initial_state)})
    elif callable(initial_state):
        dep_list.append(initial_state)
    return dep_list


def from_phys_pipeline(
    stage_instance: Any,
    *,
    name: str | None = None,
    version: str | int | None = None,
    deps: Iterable[Any] = (),
    policy: Mapping[str, Any] | None = None,
    initial_state: Any = None,
    inputs: Iterable[str] | None = None,
) -> Stage:
    """A physflow stage running ``stage_instance.process(state, policy=...)``.

    ``name`` (``"module:attr"``) lets process/dask workers import the stage; ``version``
    defaults to the stage's ``version`` attribute (else ``"v1"``); ``policy`` is passed to
    ``process`` and is part of the cache key; ``initial_state`` (a State, or a callable making
    one) is used when the ``state`` input is not connected (default: an empty ``SimpleState``).

    ``inputs=["a", "b"]`` makes a fan-in node, as phys-pipeline's ``DagState``: the stage gets
    one required input per name and ``process`` receives ``DagState({"a": ..., "b": ...})``
    (name the inputs as the stage's code indexes ``state.inputs``).
    """
    from phys_pipeline.types import SimpleState

    model = _checked_model(stage_instance)
    stage_cls = type(stage_instance)
    cfg_cls = config_class(type(model))
    policy_bag = None
    if policy is not None:
        from phys_pipeline import PolicyBag

        policy_bag = PolicyBag(dict(policy))
    template = copy.copy(stage_instance)
    fan_in = _fan_in_names(stage_cls, inputs)

    def run_phys_pipeline_stage(cfg: Any, state: Any = None, **states: Any) -> dict[str, Any]:
        if fan_in:
            from phys_pipeline.types import DagState

            state = DagState({k: _as_state(states[k]) for k in fan_in})
        elif state is None:
            state = initial_state() if callable(initial_state) else initial_state
            state = SimpleState() if state is None else state
        else:
            state = _as_state(state)
        worker = copy.copy(template)
        worker.cfg = to_model(cfg)
        result = worker.process(state.deepcopy(), policy=policy_bag)
        metrics = {str(k): float(v) for k, v in (result.metrics or {}).items()}
        return {"state": StoredState.from_state(result.state), "metrics": metrics}

    qualified = name or f"phys_pipeline:{stage_cls.__module__}.{stage_cls.__qualname__}"
    ver = str(version if version is not None else getattr(stage_instance, "version", "v1"))
    dep_list = _stage_deps(stage_instance, deps, policy, fan_in, initial_state)
    built = Stage(
        func=run_phys_pipeline_stage,
        name=qualified,
        version=ver,
        config_type=cfg_cls,
        inputs=tuple(InputSpec(k, required=True) for k in fan_in)
        or (InputSpec("state", required=False, default=None),),
        outputs=OUTPUTS,
        uses_rng=False,
        uses_ctx=False,
        deps=tuple(dep_list),
        closure_in_deps=True,  # template, policy, fan-in and initial state are in dep_list
    )
    built.default_config = mirror_config(model)  # type: ignore[attr-defined]
    built.__doc__ = stage_cls.__doc__
    return built
