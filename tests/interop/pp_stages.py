"""phys-pipeline 2.0 stages as a user has them today (used by the interop tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from phys_pipeline import PipelineStage, StageConfig, StageResult
from phys_pipeline.types import SimpleState

import physflow as pf

ENV = "PHYSFLOW_TEST_PP_COUNTS"  # inherited by worker processes


def set_counter_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)


def _count(name: str) -> None:
    with open(Path(os.environ[ENV]) / name, "a") as fh:
        fh.write("x")


def executions(name: str) -> int:
    f = Path(os.environ[ENV]) / name
    return len(f.read_text()) if f.exists() else 0


class GainConfig(StageConfig):
    gain: float = 2.0


class GainStage(PipelineStage[SimpleState, GainConfig]):
    version = "1"

    def process(self, state, *, policy=None):
        _count("gain")
        return StageResult(
            state=SimpleState(
                payload=np.asarray(state.payload) * self.cfg.gain, meta=dict(state.meta)
            ),
            metrics={"gain_db": 20 * np.log10(abs(self.cfg.gain))},
        )


class FilterConfig(StageConfig):
    taps: np.ndarray


class FilterStage(PipelineStage[SimpleState, FilterConfig]):
    """Correlates the payload with an array of taps held in the config."""

    version = "1"

    def process(self, state, *, policy=None):
        _count("filter")
        out = float(np.dot(self.cfg.taps, np.asarray(state.payload)[: self.cfg.taps.size]))
        return StageResult(
            state=SimpleState(payload=out, meta={"n_taps": self.cfg.taps.size}),
            metrics={"out": out},
        )


@pf.stage(version="1")
def ramp(n: int = 10_000) -> np.ndarray:
    return np.arange(10_000, dtype=np.float64)


@pf.stage(version="1")
def payload_of(state: object) -> float:
    return float(state.payload)


gain = pf.from_phys_pipeline(GainStage(GainConfig(gain=3.0)), name="tests.interop.pp_stages:gain")
