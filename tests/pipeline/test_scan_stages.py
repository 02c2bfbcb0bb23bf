"""Stages for the scan tests: a BPSK link (tx -> channel -> detect -> metrics).

They live in an importable module because worker processes import stages by path. Every
execution writes one file into ``cfg.log`` (named after the stage), so executions are counted
across processes without mocks. Theory: with unit-energy symbols and noise of standard deviation
sigma = 10**(-snr_db/20), the bit error rate at threshold 0 is Q(1/sigma).
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import numpy as np

import physflow as pf


class TxCfg(pf.Config):
    log: str
    n: int = 2000


class ChannelCfg(pf.Config):
    log: str
    snr_db: float = 6.0
    fail_snr_db: float | None = None  # raise at exactly this SNR (failed-point tests)
    stop_after: int = 0  # raise KeyboardInterrupt once this many channels ran (resume tests)
    stop_file: str = ""  # ... while this file exists


class DetectCfg(pf.Config):
    log: str
    threshold: float = 0.0


class LogCfg(pf.Config):
    log: str


def _log(log: str, name: str) -> None:
    Path(log, f"{name}-{os.getpid()}-{uuid.uuid4().hex}").touch()


def executions(log: str | Path, name: str) -> int:
    return len(list(Path(log).glob(f"{name}-*")))


def q_function(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


@pf.stage(version="1")
def tx(cfg: TxCfg, *, rng: np.random.Generator) -> np.ndarray:
    _log(cfg.log, "tx")
    return 2.0 * rng.integers(0, 2, cfg.n) - 1.0


@pf.stage(version="1")
def channel(cfg: ChannelCfg, x: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    if cfg.fail_snr_db is not None and cfg.snr_db == cfg.fail_snr_db:
        raise ValueError(f"channel model undefined at {cfg.snr_db} dB")
    stopping = cfg.stop_after and cfg.stop_file and os.path.exists(cfg.stop_file)
    if stopping and executions(cfg.log, "channel") >= cfg.stop_after:
        raise KeyboardInterrupt
    _log(cfg.log, "channel")
    sigma = 10 ** (-cfg.snr_db / 20)
    return x + sigma * rng.standard_normal(x.shape)


@pf.stage(version="1")
def detect(cfg: DetectCfg, y: np.ndarray) -> np.ndarray:
    _log(cfg.log, "detect")
    return np.where(y > cfg.threshold, 1.0, -1.0)


@pf.stage(version="1", outputs=["ber", "errors"])
def metrics(cfg: LogCfg, x: np.ndarray, decided: np.ndarray) -> dict:
    _log(cfg.log, "metrics")
    errors = int(np.sum(x != decided))
    return {"ber": errors / x.size, "errors": errors}


def link(log: str | Path, seed: int = 5, n: int = 2000) -> pf.Pipeline:
    log = str(log)
    p = pf.Pipeline("bpsk", seed=seed)
    p.add("tx", tx, TxCfg(log=log, n=n))
    p.add("channel", channel, ChannelCfg(log=log), x="tx")
    p.add("detect", detect, DetectCfg(log=log), y="channel")
    p.add("metrics", metrics, LogCfg(log=log), x="tx", decided="detect")
    return p


class TheoryCfg(pf.Config):
    snr_db: float = 6.0


@pf.stage(version="1")
def theory_ber(cfg: TheoryCfg) -> float:
    """Q(1/sigma): the analytic BER of the link at threshold 0."""
    return q_function(10 ** (cfg.snr_db / 20))
