"""``rf.cfar`` (CA-CFAR, grouping, NMS) and ``rf.score`` (precision, recall, IoU vs truth)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from . import cfar_core as ca
from .boxes import LABELS, make_boxes, match, nms
from .spectrogram import SpecAxes, read_rows
from .timing import FrameTimer
from .xp import BackendName, NumpyBackend, get_backend

Mode = Literal["time", "freq", "both"]


class CfarConfig(pf.Config):
    #: Design false-alarm probability per cell (split Pfa/2 + Pfa/2 in mode 'both').
    pfa: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 1e-6
    mode: Mode = "both"
    #: Training along time (same bin, other columns): guard cells, cells per side, stride.
    guard_time: Annotated[int, msgspec.Meta(ge=0)] = 24
    train_time: Annotated[int, msgspec.Meta(ge=1)] = 8
    stride_time: Annotated[int, msgspec.Meta(ge=1)] = 2
    #: Training along frequency (same column, other bins).
    guard_freq: Annotated[int, msgspec.Meta(ge=0)] = 4
    train_freq: Annotated[int, msgspec.Meta(ge=1)] = 8
    stride_freq: Annotated[int, msgspec.Meta(ge=1)] = 3
    #: Cells with fewer training cells than this (at frame edges) are never detections.
    min_train: Annotated[int, msgspec.Meta(ge=1)] = 4
    #: Hits closer than these half-widths (columns, bins) join one detection.
    merge_time: Annotated[int, msgspec.Meta(ge=0)] = 1
    merge_freq: Annotated[int, msgspec.Meta(ge=0)] = 4
    #: Detections with fewer hit cells are dropped (isolated false alarms).
    min_cells: Annotated[int, msgspec.Meta(ge=1)] = 4
    #: NMS: a detection overlapping a stronger one by more than this IoU is dropped.
    nms_iou: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.3
    backend: BackendName = "numpy"

    def __post_init__(self) -> None:
        check_range(self, "pfa", gt=0.0, lt=1.0)
        check_choice(self, "mode", Mode)
        check_choice(self, "backend", BackendName)
        for name in ("train_time", "train_freq", "stride_time", "stride_freq", "min_train"):
            check_range(self, name, ge=1)
        check_range(self, "nms_iou", ge=0.0, le=1.0)


def detect_frame(be: Any, db: np.ndarray, cfg: CfarConfig) -> tuple[np.ndarray, list]:
    """CFAR hits of one frame (relative dB in, linear power for the test) and its groups."""
    power = be.power10(be.asarray(db, dtype=np.float32) / 10.0)
    hits = ca.ca_cfar(
        be,
        power,
        mode=cfg.mode,
        pfa=cfg.pfa,
        time=(cfg.guard_time, cfg.train_time, cfg.stride_time),
        freq=(cfg.guard_freq, cfg.train_freq, cfg.stride_freq),
        min_train=cfg.min_train,
    )
    hits = be.to_numpy(hits)
    groups = ca.components(hits, np.asarray(db), (cfg.merge_time, cfg.merge_freq), cfg.min_cells)
    return hits, groups


@pf.stage(
    version="1",
    outputs=["detections", "latency"],
    lazy=["db"],
    deps=[
        NumpyBackend,
        SpecAxes,
        detect_frame,
        ca.ca_cfar,
        ca.cfar_last_axis,
        ca.window_sums,
        ca.alpha,
        ca.to_numpy_counts,
        ca.components,
        nms,
        make_boxes,
        read_rows,
    ],
)
def cfar(cfg: CfarConfig, db: Any, axes: Any) -> dict:
    """Detection boxes of every frame ([t0, t1, f0, f1], score = peak dB re frame reference)."""
    if getattr(db, "ndim", 0) != 3 or tuple(db.shape[1:]) != (axes.cols, axes.n_fft):
        raise ValueError(
            f"rf.cfar: input 'db' must be (frames, {axes.cols}, {axes.n_fft}) as described by "
            f"'axes', got shape {tuple(getattr(db, 'shape', ()))}; wire db='normalize.db'"
        )
    be = get_backend(cfg.backend)
    import scipy.ndimage  # noqa: F401  (imported before the first frame's timer starts)

    per_chunk = db.chunksize[0] if hasattr(db, "chunksize") else db.shape[0]
    rows, frames, scores = [], [], []
    timer = FrameTimer()
    for f0 in range(0, db.shape[0], per_chunk):
        block = read_rows(db, f0, min(db.shape[0], f0 + per_chunk))
        for i, frame_db in enumerate(block):
            f = f0 + i
            with timer.frame():
                _, groups = detect_frame(be, frame_db, cfg)
                boxes = [axes.cell_box(f, c0, c1, b0, b1) for c0, c1, b0, b1, _ in groups]
                peaks = [g[4] for g in groups]
                keep = nms(np.asarray(boxes).reshape(-1, 4), np.asarray(peaks), cfg.nms_iou)
            rows += [boxes[k] for k in keep]
            scores += [peaks[k] for k in keep]
            frames += [f] * len(keep)
    found = make_boxes(rows, frames, ["signal"] * len(rows), scores)
    return {"detections": found, "latency": timer.summary()}


class ScoreConfig(pf.Config):
    #: A detection matches a truth box when their IoU is at least this (one-to-one).
    iou_threshold: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.5

    def __post_init__(self) -> None:
        check_range(self, "iou_threshold", gt=0.0, le=1.0)


SCORES = [
    "precision",
    "recall",
    "mean_iou",
    "n_truth",
    "n_detections",
    "n_matched",
    "burst_recall",
    "burst_mean_iou",
]


@pf.stage(version="1", outputs=SCORES, deps=[match])
def score(cfg: ScoreConfig, detections: Any, truth: Any) -> dict:
    """Precision and recall of one-to-one IoU matches; mean IoU of the matches; the same for
    bursts alone (qpsk and chirp truth boxes)."""
    pairs = match(truth.box, detections.box, cfg.iou_threshold)
    n_t, n_d = len(truth), len(detections)
    bursts = {i for i, lab in enumerate(truth.label) if LABELS[lab] in ("qpsk", "chirp")}
    burst_pairs = [p for p in pairs if p[0] in bursts]
    return {
        "precision": len(pairs) / n_d if n_d else 1.0,
        "recall": len(pairs) / n_t if n_t else 1.0,
        "mean_iou": float(np.mean([p[2] for p in pairs])) if pairs else 0.0,
        "n_truth": n_t,
        "n_detections": n_d,
        "n_matched": len(pairs),
        "burst_recall": len(burst_pairs) / len(bursts) if bursts else 1.0,
        "burst_mean_iou": float(np.mean([p[2] for p in burst_pairs])) if burst_pairs else 0.0,
    }
