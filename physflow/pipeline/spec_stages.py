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


def _missing_module_message(ref: str, exc: ModuleNotFoundError, spec_file: str) -> str:
    """Where Python looked for a stage's module, and how to make it importable."""
    import os
    import sys

    module = ref.partition(":")[0]
    missing = exc.name or module
    if not (module == missing or module.startswith(missing + ".")):
        return (
            f"importing module '{module}' for stage '{ref}' failed: it imports '{missing}', "
            f"which is not installed (pip install it, or install the extra that provides it)"
        )
    top = missing.split(".")[0]
    spec_dir = os.path.dirname(os.path.abspath(spec_file))
    where = [d for d in dict.fromkeys([spec_dir, os.getcwd()]) if d in sys.path]
    looked = ", ".join(where) if where else "the installed packages"
    return (
        f"cannot import module '{missing}' for stage '{ref}': no {top}.py or package {top}/ in "
        f"{looked}{' or the installed packages' if where else ''}. Put {top}.py next to the "
        f"spec ({spec_dir}), run from its directory, add that directory to PYTHONPATH, or "
        "install its package"
    )


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
            _missing_module_message(ref, exc, doc.file), path, node=node_id, field="stage"
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
