"""``rf.train_sample``: one frame as a detector training sample (image + boxes + labels).

configs/rf_dataset.yaml runs synth -> stft -> normalize (with the model image) ->
train_sample per sample through physflow.ml. Boxes are in image coordinates as fractions of
the image axes, ``[t0, t1, f0, f1]`` in [0, 1] (time along the first image axis, frequency
along the second), so they do not depend on the image size; labels index :data:`LABELS`.
The dataset card records the stft and normalize configs and code fingerprints, which
:func:`physflow.stages.rf.check_contract` turns into the preprocessing digest.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_range
from .boxes import LABELS
from .spectrogram import SpecAxes


class TrainSampleConfig(pf.Config):
    #: Which frame of the recording becomes the sample (synth with n_frames: 1 has one).
    frame: Annotated[int, msgspec.Meta(ge=0)] = 0
    #: Keep only boxes whose clipped area is at least this fraction of their own area.
    min_visible: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5

    def __post_init__(self) -> None:
        check_range(self, "frame", ge=0)
        check_range(self, "min_visible", ge=0.0, le=1.0)


def image_extent(axes: Any, frame: int) -> tuple[float, float, float, float]:
    """[t0, t1, f0, f1] the image of ``frame`` spans: from the first column's start edge to
    the last column's end edge, and from the lowest bin's lower edge to the highest's upper."""
    return axes.cell_box(frame, 0, axes.cols - 1, 0, axes.n_fft - 1)


def to_image_fractions(box: np.ndarray, extent: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(boxes clipped to the image as fractions of its axes, visible fraction of each box)."""
    t0, t1, f0, f1 = extent
    scale = np.array([t1 - t0, t1 - t0, f1 - f0, f1 - f0])
    frac = (np.asarray(box, dtype=np.float64).reshape(-1, 4) - [t0, t0, f0, f0]) / scale
    clipped = np.clip(frac, 0.0, 1.0)
    area = (frac[:, 1] - frac[:, 0]) * (frac[:, 3] - frac[:, 2])
    kept = (clipped[:, 1] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 2])
    with np.errstate(invalid="ignore", divide="ignore"):
        visible = np.where(area > 0, kept / area, 0.0)
    return clipped, visible


@pf.stage(
    version="1",
    outputs=["image", "boxes", "labels"],
    deps=[image_extent, to_image_fractions, SpecAxes],
)
def train_sample(cfg: TrainSampleConfig, image: Any, truth: Any, axes: Any) -> dict:
    """The model image of one frame with its truth boxes (float32 fractions) and labels
    (int16 into LABELS: signal, tone, qpsk, chirp)."""
    if image is None:
        raise ValueError(
            "rf.train_sample: input 'image' is empty; set normalize.image_dtype (uint8, "
            "float16 or float32) so rf.normalize makes the model image"
        )
    if not 0 <= cfg.frame < image.shape[0]:
        raise ValueError(
            f"rf.train_sample: frame {cfg.frame} does not exist; the recording has "
            f"{image.shape[0]} frame(s)"
        )
    mine = np.asarray(truth.frame) == cfg.frame
    boxes, visible = to_image_fractions(truth.box[mine], image_extent(axes, cfg.frame))
    keep = visible >= cfg.min_visible
    return {
        "image": np.ascontiguousarray(image[cfg.frame]),
        "boxes": boxes[keep].astype(np.float32),
        "labels": np.asarray(truth.label)[mine][keep].astype(np.int16),
    }


__all__ = ["LABELS", "TrainSampleConfig", "image_extent", "to_image_fractions", "train_sample"]
