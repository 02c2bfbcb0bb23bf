"""``physflow stages`` and ``physflow manifest-schema``."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, UsageError, write_text


def stage_info(name: str, path: str) -> dict[str, Any]:
    from ..pipeline.registry import resolve_registered
    from ..pipeline.spec import type_name

    info: dict[str, Any] = {"name": name, "path": path}
    try:
        stage = resolve_registered(name)
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        return info
    import msgspec

    info["version"] = stage.version
    info["inputs"] = list(stage.input_names)
    info["outputs"] = list(stage.output_names)
    info["rng"] = stage.uses_rng
    fields = []
    if stage.config_type is not None:
        info["config"] = stage.config_type.__qualname__
        for f in msgspec.structs.fields(stage.config_type):
            entry: dict[str, Any] = {"name": f.name, "type": type_name(f.type)}
            if f.default is not msgspec.NODEFAULT:
                entry["default"] = f.default
            elif f.default_factory is not msgspec.NODEFAULT:
                entry["default"] = f.default_factory()
            else:
                entry["required"] = True
            fields.append(entry)
    info["fields"] = fields
    doc = (stage.__doc__ or "").strip().splitlines()
    info["doc"] = doc[0] if doc else ""
    return info


def cmd_stages(args: argparse.Namespace) -> int:
    from ..pipeline.registry import registered_names

    names = {k: v for k, v in registered_names().items() if k.startswith(args.prefix)}
    infos = [stage_info(k, v) for k, v in names.items()]
    if args.json:
        import json

        print(json.dumps(infos, indent=2, default=repr))
        return EXIT_OK
    if not infos:
        print("no registered stages" + (f" starting with {args.prefix!r}" if args.prefix else ""))
        return EXIT_OK
    for info in infos:
        if "error" in info:
            print(f"{info['name']}  ({info['path']})  cannot load: {info['error']}")
            continue
        head = f"{info['name']}  v{info['version']}  ({info['path']})"
        print(head + (f"  - {info['doc']}" if info["doc"] else ""))
        ins = ", ".join(info["inputs"]) or "-"
        outs = ", ".join(info["outputs"])
        print(f"    inputs: {ins}    outputs: {outs}" + ("    uses rng" if info["rng"] else ""))
        if info.get("config"):
            print(f"    config {info['config']}:")
            for f in info["fields"]:
                default = "(required)" if f.get("required") else f"= {f['default']!r}"
                print(f"      {f['name']}: {f['type']} {default}")
    return EXIT_OK


def cmd_dataset(args: argparse.Namespace) -> int:
    """``physflow dataset generate | info | ls`` (implemented in physflow/ml/commands.py)."""
    from ..ml.commands import run

    return run(args)


def cmd_manifest_schema(args: argparse.Namespace) -> int:
    import json

    from ..manifests.schema_export import manifest_json_schema

    try:
        text = json.dumps(manifest_json_schema(args.kind), indent=2) + "\n"
    except ImportError as exc:
        raise UsageError(f"--kind {args.kind}: not available ({exc})") from None
    return write_text(text, args.output)
