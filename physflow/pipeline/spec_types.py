"""The typed blocks of a spec besides its stages: ``scan:`` (consumed by physflow.scans and
the scan command) and the loaded result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from .graph import Pipeline


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
    #: A collected count n behind a rate (e.g. metrics.n_bits for metrics.ber): zero rates are
    #: drawn on a log axis as upper bounds at 3/n instead of at the bottom of the axis.
    trials: str | None = None


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
