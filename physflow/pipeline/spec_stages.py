"""Finding the stage a spec node names: a registered name or ``package.module:function``.

A spec is code, like a Makefile: ``stage: module:attr`` imports that module.
"""

from __future__ import annotations

from typing import Any

from ..core.suggest import closest
from .spec_yaml import Path_, _Document, _got
from .stage import Stage


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


def load_stage(doc: _Document, node_id: str, ref: Any, path: Path_) -> Stage:
    """The stage a node's ``stage:`` names, or a SpecError at that line saying why not."""
    from .registry import UnknownStageError, registered_names

    if not isinstance(ref, str) or not ref:
        raise doc.error(
            f"expected an import path 'package.module:function' or a registered name, got "
            f"{_got(ref)}",
            path,
            node=node_id,
            field="stage",
        )
    try:
        stage = resolve_stage_reference(ref)
    except UnknownStageError as exc:
        raise doc.error(
            f"unknown stage '{ref}' (not registered; use 'package.module:function' or one "
            "of 'physflow stages')",
            path,
            node=node_id,
            field="stage",
            suggestions=exc.suggestions,
        ) from None
    except ModuleNotFoundError as exc:
        raise doc.error(
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
        raise doc.error(
            f"module '{module_name}' has no stage '{attr}'",
            path,
            node=node_id,
            field="stage",
            suggestions=closest(attr, names),
        ) from None
    except Exception as exc:
        raise doc.error(
            f"cannot load stage '{ref}': {type(exc).__name__}: {exc}",
            path,
            node=node_id,
            field="stage",
            suggestions=closest(ref, registered_names()) if ":" not in ref else None,
        ) from None
    if not isinstance(stage, Stage):
        raise doc.error(
            f"'{ref}' is {'a class' if isinstance(stage, type) else type(stage).__name__}, "
            "not a physflow stage (decorate a function with "
            "@physflow.stage)",
            path,
            node=node_id,
            field="stage",
        )
    return stage
