"""YAML pipeline specs: parsed with ``yaml.safe_load`` semantics into msgspec types and a Pipeline.

Every error is a :class:`SpecError` whose message is one line naming the file, line and column,
the node and field, what was expected and, for unknown names, the closest valid ones::

    configs/x.yaml:7:12: node 'noisy', field 'sigma': expected float, got 'abc'

Line numbers come from the composed YAML nodes (``SafeLoader``), so the position points at the
offending key or value, not at the start of the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .graph import Pipeline
from .spec_build import _Builder
from .spec_stages import resolve_stage_reference
from .spec_types import LoadedSpec, PlotSpec, SampleSpec, ScanSpec
from .spec_yaml import SpecError, _Document, type_name

__all__ = [
    "LoadedSpec",
    "PlotSpec",
    "SampleSpec",
    "ScanSpec",
    "SpecError",
    "load_spec",
    "load_spec_full",
    "load_spec_with_scan",
    "parse_set_option",
    "resolve_stage_reference",
    "type_name",
]


def _spec_digest(text: str, overrides: Mapping[str, Any]) -> str:
    from ..core.framing import merkle
    from ..core.hashing import UnhashableValueError, digest

    try:
        extra = digest(dict(sorted((str(k), v) for k, v in overrides.items())))
    except UnhashableValueError:
        extra = repr(sorted(overrides.items()))
    return merkle("physflow.spec.v1", text, extra)


def _read_spec_bytes(path: Path) -> bytes:
    """The file's bytes, reading at most one byte past the size limit (a FIFO or /dev/zero
    given as a spec must not be read forever)."""
    from .spec_limits import MAX_BYTES

    with path.open("rb") as fh:
        return fh.read(MAX_BYTES + 1)


def _nearby_specs(path: Path) -> list[str]:
    """Files next to a missing spec that it was probably meant to be (demo.yml -> demo.yaml)."""
    from ..core.suggest import closest

    parent = path.parent
    try:
        names = [p.name for p in parent.iterdir() if p.suffix in (".yaml", ".yml")]
    except OSError:
        return []
    swapped = path.with_suffix(".yaml" if path.suffix == ".yml" else ".yml").name
    found = [swapped] if swapped in names else []
    found += [n for n in closest(path.name, names) if n not in found]
    return [str(parent / n) if str(parent) != "." else n for n in found[:3]]


def load_spec_full(
    path: str | Path, overrides: Mapping[str, Any] | None = None, *, text: str | None = None
) -> LoadedSpec:
    """Parse and check a spec file; every problem raises :class:`SpecError`."""
    file = str(path)
    if text is None:
        from .spec_limits import LimitError, decode_spec

        try:
            text = decode_spec(_read_spec_bytes(Path(path)))
        except LimitError as exc:
            raise SpecError(exc.message, file=file, line=exc.line, column=exc.column) from None
        except FileNotFoundError:
            raise SpecError(
                "spec file not found", file=file, suggestions=_nearby_specs(Path(path))
            ) from None
        except IsADirectoryError:
            raise SpecError(
                "is a directory; give the path of a YAML spec file", file=file
            ) from None
        except OSError as exc:
            raise SpecError(f"cannot read spec: {exc.strerror or exc}", file=file) from None
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
    from .spec_limits import LimitError, load_value

    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise SpecError(f"--set {text!r}: expected node.field=VALUE", field=text)
    try:
        parsed = load_value(value) if value.strip() else ""
    except LimitError as exc:
        raise SpecError(f"--set {path}: {exc.message}") from None
    except (yaml.YAMLError, RecursionError):
        parsed = value
    return path, parsed
