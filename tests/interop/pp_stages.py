"""phys-pipeline 2.0 stages as a user has them today (used by the interop tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from phys_pipeline import PipelineStage, StageConfig, StageResult
from phys_pipeline.types import DagState, SimpleState
from pydantic import Field

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


class MixConfig(StageConfig):
    weight: float = 1.0


class MixStage(PipelineStage[DagState, MixConfig]):
    """A phys-pipeline fan-in node: adds the payloads of two upstream states ``a`` and ``b``
    (as phys-pipeline's DagExecutor hands them over, keyed by dependency id)."""

    version = "1"

    def process(self, state, *, policy=None):
        _count("mix")
        a = np.asarray(state.inputs["a"].payload)
        b = np.asarray(state.inputs["b"].payload)
        out = a + self.cfg.weight * b
        return StageResult(
            state=SimpleState(payload=out), metrics={"power": float(np.mean(out**2))}
        )


fir = pf.from_phys_pipeline(
    FilterStage(FilterConfig(taps=np.array([0.5, 0.25]))), name="tests.interop.pp_stages:fir"
)
mix = pf.from_phys_pipeline(
    MixStage(MixConfig()), inputs=["a", "b"], name="tests.interop.pp_stages:mix"
)


class AttenConfig(StageConfig):
    loss_db: float = Field(default=3.0, ge=0.0)  # a constraint only pydantic knows


class AttenStage(PipelineStage[SimpleState, AttenConfig]):
    version = "1"

    def process(self, state, *, policy=None):
        scale = 10 ** (-self.cfg.loss_db / 20)
        return StageResult(state=SimpleState(payload=np.asarray(state.payload) * scale))


atten = pf.from_phys_pipeline(AttenStage(AttenConfig()), name="tests.interop.pp_stages:atten")
