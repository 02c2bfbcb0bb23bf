"""Time-frequency boxes (truth and detections), IoU, non-maximum suppression and matching.

A box is ``[t0, t1, f0, f1]``: seconds from the start of the recording and baseband Hz (offset
from the centre frequency). Boxes of every frame of a recording live in one ``Boxes`` value.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

#: Label names shared by synth and score; detections are unlabelled ("signal").
LABELS = ("signal", "tone", "qpsk", "chirp")


class Boxes(msgspec.Struct, frozen=True, kw_only=True):
    """k boxes: ``box`` (k, 4) float64 [t0, t1, f0, f1], ``frame`` (k,) int32, ``label``
    (k,) int16 into :data:`LABELS`, ``score`` (k,) float32 (peak power in dB for
    detections, in-band SNR in dB for truth)."""

    box: Any
    frame: Any
    label: Any
    score: Any

    def __len__(self) -> int:
        return int(self.box.shape[0])

    def label_names(self) -> list[str]:
        return [LABELS[i] for i in self.label]

    def select(self, keep: Any) -> Boxes:
        return Boxes(
            box=self.box[keep],
            frame=self.frame[keep],
            label=self.label[keep],
            score=self.score[keep],
        )


def make_boxes(
    rows: list[tuple[float, float, float, float]],
    frames: list[int],
    labels: list[str],
    scores: list[float],
) -> Boxes:
    """Boxes from Python lists (empty lists give an empty, correctly shaped value)."""
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown box labels {unknown}; use one of {list(LABELS)}")
    return Boxes(
        box=np.asarray(rows, dtype=np.float64).reshape(-1, 4),
        frame=np.asarray(frames, dtype=np.int32),
        label=np.asarray([LABELS.index(x) for x in labels], dtype=np.int16),
        score=np.asarray(scores, dtype=np.float32),
    )


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (k, 4) with every box in ``b`` (m, 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None, :, :]
    dt = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    df = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 2], b[..., 2]), 0, None)
    inter = dt * df
    area_a = (a[..., 1] - a[..., 0]) * (a[..., 3] - a[..., 2])
    area_b = (b[..., 1] - b[..., 0]) * (b[..., 3] - b[..., 2])
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(box: np.ndarray, score: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (highest score first; a box is dropped
    when it overlaps a kept one with IoU > ``iou_threshold``)."""
    order = np.argsort(-np.asarray(score), kind="stable")
    ious = iou_matrix(box, box)
    keep: list[int] = []
    for i in order:
        if all(ious[i, j] <= iou_threshold for j in keep):
            keep.append(int(i))
    return np.asarray(sorted(keep), dtype=np.int64)


def match(
    truth: np.ndarray, found: np.ndarray, iou_threshold: float
) -> list[tuple[int, int, float]]:
    """One-to-one matching maximising total IoU (Hungarian); pairs below the threshold are not
    matches. Returns [(truth index, detection index, IoU)]."""
    if len(truth) == 0 or len(found) == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    ious = iou_matrix(truth, found)
    rows, cols = linear_sum_assignment(-ious)
    return [
        (int(r), int(c), float(ious[r, c]))
        for r, c in zip(rows, cols)
        if ious[r, c] >= iou_threshold
    ]
