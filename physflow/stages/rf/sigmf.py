"""SigMF recordings: ``<base>.sigmf-meta`` (plain JSON) + ``<base>.sigmf-data`` (raw samples).

Written and read as ``cf32_le`` (complex64, little-endian), the datatype IQ values hold, so a
round trip is bit-exact. The start time goes to the first capture's ``core:datetime`` (ISO 8601
UTC with microseconds); truth or detection boxes can be written as annotations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from .boxes import LABELS, Boxes, make_boxes
from .iq import IQ, RecordingFormatError, check_samples

DATATYPE = "cf32_le"
SAMPLE = np.dtype("<c8")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def paths(path: str | Path) -> tuple[Path, Path]:
    """(meta, data) paths from the base name or either file's name."""
    path = Path(path)
    if path.suffix in (".sigmf-meta", ".sigmf-data"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".sigmf-meta"), path.with_name(path.name + ".sigmf-data")


def iso_from_us(us: int) -> str:
    try:
        when = EPOCH + timedelta(microseconds=us)
    except OverflowError:
        raise RecordingFormatError(
            f"start_time_us {us} is not a date SigMF's core:datetime can hold (years 1-9999)"
        ) from None
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def us_from_iso(text: str, where: str) -> int:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise RecordingFormatError(
            f"{where}: core:datetime {text!r} is not an ISO 8601 time "
            "(e.g. 2024-01-01T00:00:00.000000Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // timedelta(microseconds=1)


def write(
    base: str | Path, iq: IQ, annotations: Boxes | None = None, extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``iq`` (and optional boxes as annotations) as a SigMF pair; returns the paths."""
    meta_path, data_path = paths(base)
    check_samples(iq.samples, f"{data_path}: samples")
    meta = build_meta(iq, annotations, extra)
    np.ascontiguousarray(iq.samples, dtype=SAMPLE).tofile(data_path)
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta_path, data_path


def build_meta(
    iq: Any, annotations: Boxes | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The .sigmf-meta JSON object for a recording (``iq``: an IQ or IQMeta)."""
    fs, fc = float(iq.sample_rate_hz), float(iq.center_freq_hz)
    meta: dict[str, Any] = {
        "global": {
            "core:datatype": DATATYPE,
            "core:sample_rate": fs,
            "core:version": "1.0.0",
            "core:recorder": "physflow.stages.rf",
            **(extra or {}),
        },
        "captures": [
            {
                "core:sample_start": 0,
                "core:frequency": fc,
                "core:datetime": iso_from_us(iq.start_time_us),
            }
        ],
        "annotations": [],
    }
    if annotations is not None:
        for box, label in zip(annotations.box, annotations.label_names()):
            t0, t1, f0, f1 = (float(v) for v in box)
            start = round(t0 * fs)
            meta["annotations"].append(
                {
                    "core:sample_start": start,
                    "core:sample_count": round(t1 * fs) - start,
                    "core:freq_lower_edge": fc + f0,
                    "core:freq_upper_edge": fc + f1,
                    "core:label": label,
                }
            )
    return meta


def _field(obj: Any, key: str, kind: Any, where: str, path: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise RecordingFormatError(f"{where}: missing field {path}{key}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordingFormatError(
            f"{where}: field {path}{key} = {value!r} has the wrong type "
            f"(expected {getattr(kind, '__name__', kind)})"
        )
    return value


def read_meta(path: str | Path) -> dict[str, Any]:
    """The parsed and checked meta JSON: datatype, sample rate, first capture."""
    meta_path, _ = paths(path)
    if not meta_path.exists():
        raise RecordingFormatError(f"{meta_path}: no such SigMF meta file")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise RecordingFormatError(
            f"{meta_path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    where = str(meta_path)
    glob = _field(meta, "global", dict, where, "")
    datatype = _field(glob, "core:datatype", str, where, "global.")
    if datatype != DATATYPE:
        raise RecordingFormatError(
            f"{where}: global.core:datatype {datatype!r} is not supported; physflow.rf reads "
            f"and writes {DATATYPE!r} (complex64 little-endian)"
        )
    fs = _field(glob, "core:sample_rate", (int, float), where, "global.")
    if not fs > 0:
        raise RecordingFormatError(f"{where}: global.core:sample_rate must be > 0, got {fs}")
    captures = meta.get("captures") or [{}]
    if not isinstance(captures, list) or not isinstance(captures[0], dict):
        raise RecordingFormatError(f"{where}: captures must be a list of objects")
    return meta


def read(path: str | Path, mmap: bool = False) -> IQ:
    """The recording as an ``IQ`` (samples memory-mapped read-only when ``mmap``)."""
    meta = read_meta(path)
    meta_path, data_path = paths(path)
    n = data_samples(data_path)
    if mmap and n:
        samples = np.memmap(data_path, dtype=SAMPLE, mode="r", shape=(n,))
    else:
        samples = np.fromfile(data_path, dtype=SAMPLE)
    return IQ(
        samples=samples.view(np.complex64)
        if np.complex64 == SAMPLE
        else samples.astype(np.complex64),
        **iq_fields(meta, str(meta_path)),
    )


def iq_fields(meta: dict[str, Any], where: str) -> dict[str, Any]:
    capture = (meta.get("captures") or [{}])[0]
    freq = capture.get("core:frequency", 0.0)
    when = capture.get("core:datetime")
    return {
        "sample_rate_hz": float(meta["global"]["core:sample_rate"]),
        "center_freq_hz": float(freq),
        "start_time_us": 0 if when is None else us_from_iso(when, where),
    }


def data_samples(data_path: Path) -> int:
    """Number of samples in the data file (checked to be whole cf32_le samples)."""
    if not data_path.exists():
        raise RecordingFormatError(f"{data_path}: no such SigMF data file")
    size = data_path.stat().st_size
    if size % SAMPLE.itemsize:
        raise RecordingFormatError(
            f"{data_path}: {size} bytes is not a whole number of {DATATYPE} samples "
            f"({SAMPLE.itemsize} bytes each); the file is truncated or not {DATATYPE}"
        )
    return size // SAMPLE.itemsize


def read_annotations(path: str | Path, frame_samples: int | None = None) -> Boxes:
    """Annotations as boxes (baseband Hz, seconds from the start); frame = sample_start //
    frame_samples when given, else -1. Unknown labels read as 'signal'."""
    meta = read_meta(path)
    fs = float(meta["global"]["core:sample_rate"])
    fc = float((meta.get("captures") or [{}])[0].get("core:frequency", 0.0))
    rows, frames, labels, scores = [], [], [], []
    for a in meta.get("annotations") or []:
        start, count = int(a["core:sample_start"]), int(a.get("core:sample_count", 0))
        lo = float(a.get("core:freq_lower_edge", fc - fs / 2)) - fc
        hi = float(a.get("core:freq_upper_edge", fc + fs / 2)) - fc
        rows.append((start / fs, (start + count) / fs, lo, hi))
        frames.append(start // frame_samples if frame_samples else -1)
        label = a.get("core:label", "signal")
        labels.append(label if label in LABELS else "signal")
        scores.append(np.nan)
    return make_boxes(rows, frames, labels, scores)
