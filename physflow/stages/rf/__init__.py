"""RF stage pack: IQ recordings -> spectrograms -> CA-CFAR detections, with SigMF and IQ01
files, streaming for long recordings, per-frame latency and a preprocessing contract that ties
datasets and serving pipelines together (see docs/rf.md)."""

from __future__ import annotations

from .boxes import LABELS, Boxes, iou_matrix, make_boxes, match, nms
from .contract import (
    ContractError,
    check_contract,
    contract_of,
    preprocessing_contract,
    preprocessing_digest,
)
from .dataset import TrainSampleConfig, train_sample
from .detect import CfarConfig, ScoreConfig, cfar, score
from .iq import IQ, IQMeta, RecordingFormatError
from .readers import ReadIq01Config, ReadSigmfConfig, read_iq01, read_sigmf, recording_digest
from .spectrogram import NormalizeConfig, SpecAxes, StftConfig, normalize, stft
from .synthetic import BurstSpec, SynthConfig, ToneSpec, synth
from .timing import LatencyConfig, latency


def detect_pipeline(
    name: str = "rf_detect",
    seed: int = 1,
    synth_config: SynthConfig | None = None,
    stft_config: StftConfig | None = None,
    normalize_config: NormalizeConfig | None = None,
    cfar_config: CfarConfig | None = None,
    score_config: ScoreConfig | None = None,
    latency_config: LatencyConfig | None = None,
):
    """synth -> stft -> normalize -> cfar -> score (+ latency), as configs/rf_detect.yaml."""
    import physflow as pf

    p = pf.Pipeline(name, seed=seed)
    p.add("synth", synth, synth_config or SynthConfig())
    p.add("stft", stft, stft_config or StftConfig(), iq="synth.iq")
    p.add("normalize", normalize, normalize_config or NormalizeConfig(), power="stft.power")
    p.add("cfar", cfar, cfar_config or CfarConfig(), db="normalize.db", axes="stft.axes")
    p.add(
        "score",
        score,
        score_config or ScoreConfig(),
        detections="cfar.detections",
        truth="synth.truth",
    )
    p.add(
        "latency",
        latency,
        latency_config or LatencyConfig(),
        stft="stft.latency",
        normalize="normalize.latency",
        cfar="cfar.latency",
    )
    return p


__all__ = [
    "IQ",
    "LABELS",
    "Boxes",
    "BurstSpec",
    "CfarConfig",
    "ContractError",
    "IQMeta",
    "LatencyConfig",
    "NormalizeConfig",
    "ReadIq01Config",
    "ReadSigmfConfig",
    "RecordingFormatError",
    "ScoreConfig",
    "SpecAxes",
    "StftConfig",
    "SynthConfig",
    "ToneSpec",
    "TrainSampleConfig",
    "cfar",
    "check_contract",
    "contract_of",
    "detect_pipeline",
    "iou_matrix",
    "latency",
    "make_boxes",
    "match",
    "nms",
    "normalize",
    "preprocessing_contract",
    "preprocessing_digest",
    "read_iq01",
    "read_sigmf",
    "recording_digest",
    "score",
    "stft",
    "synth",
    "train_sample",
]
