"""Stages for executor/failure tests. They live in an importable module (not in test files)
because worker processes and dask workers import stages by path. Side effects go to files in a
directory named by the config, so executions are counted across processes without mocks."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

import physflow as pf

STAGES_DIR = str(Path(__file__).resolve().parent)


class SourceCfg(pf.Config):
    n: int = 64


class ScaleCfg(pf.Config):
    scale: float = 1.0


class LogCfg(pf.Config):
    log_dir: str
    name: str
    value: float = 0.0
    seconds: float = 0.0
    fail_times: int = 0
    meet: int = 0
    wait_for: str = ""


# -- the determinism pipeline: rng stages, fan-out (multi-output + several consumers), fan-in --


@pf.stage(version="1")
def source(cfg: SourceCfg, *, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(cfg.n)


@pf.stage(version="1", outputs=["low", "high"])
def split(x: np.ndarray) -> dict:
    return {"low": np.sort(x)[: x.size // 2], "high": np.sort(x)[x.size // 2 :]}


@pf.stage(version="1")
def jitter(cfg: ScaleCfg, x: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    return cfg.scale * x + rng.standard_normal(x.shape)


@pf.stage(version="1")
def merge(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.concatenate([a, b, c])


@pf.stage(version="1", outputs=["mean", "power"])
def summary(x: np.ndarray, *, rng: np.random.Generator) -> dict:
    pick = rng.integers(0, x.size, 8)
    return {"mean": float(x[pick].mean()), "power": float(np.mean(x**2))}


def build_pipeline(fan: int = 6, seed: int = 7) -> pf.Pipeline:
    p = pf.Pipeline("determinism", seed=seed)
    p.add("src", source, SourceCfg(n=256))
    p.add("parts", split, x="src")
    for i in range(fan):
        p.add(f"j{i}", jitter, ScaleCfg(scale=1.0 + i), x="parts.low" if i % 2 else "parts.high")
    for i in range(0, fan - 2, 2):
        p.add(f"m{i}", merge, a=f"j{i}", b=f"j{i + 1}", c=f"j{i + 2}")
        p.add(f"s{i}", summary, x=f"m{i}")
    return p


# -- file-logged stages ---------------------------------------------------------------------------


def _log(cfg: LogCfg, what: str) -> int:
    """Append a line to <log_dir>/<name>.<what>; return how many lines it now has."""
    path = Path(cfg.log_dir) / f"{cfg.name}.{what}"
    with open(path, "a") as fh:
        fh.write(f"{time.time()!r} {os.getpid()}\n")
    return len(path.read_text().splitlines())


def _interval(cfg: LogCfg) -> None:
    start = time.time()
    if cfg.meet:
        _rendezvous(cfg)
    if cfg.seconds:
        time.sleep(cfg.seconds)
    with open(Path(cfg.log_dir) / f"{cfg.name}.interval", "w") as fh:
        fh.write(f"{start!r} {time.time()!r}\n")


def _rendezvous(cfg: LogCfg) -> None:
    """Wait until ``cfg.meet`` tasks have arrived: proves they run at the same time."""
    (Path(cfg.log_dir) / f"{cfg.name}.arrived").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(cfg.log_dir).glob("*.arrived"))) < cfg.meet:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{cfg.name}: fewer than {cfg.meet} tasks ran concurrently")
        time.sleep(0.01)


@pf.stage(version="1")
def counted(cfg: LogCfg) -> float:
    _log(cfg, "runs")
    return cfg.value


@pf.stage(version="1")
def counted_add(cfg: LogCfg, x: float) -> float:
    _log(cfg, "runs")
    return x + cfg.value


@pf.stage(version="1")
def counted_array(cfg: LogCfg) -> np.ndarray:
    _log(cfg, "runs")
    return np.arange(1_000_000, dtype=np.float64) * cfg.value


@pf.stage(version="1")
def counted_sum(cfg: LogCfg, x: np.ndarray) -> float:
    _log(cfg, "runs")
    return float(np.sum(x))


@pf.stage(version="1")
def boom(cfg: LogCfg, x: float) -> float:
    _log(cfg, "runs")
    raise ValueError(f"boom in {cfg.name}")


@pf.stage(version="1")
def fails_while_marker(cfg: LogCfg, x: float) -> float:
    """Fails while <log_dir>/<name>.broken exists (an outside fault, e.g. a missing file)."""
    _log(cfg, "runs")
    if (Path(cfg.log_dir) / f"{cfg.name}.broken").exists():
        raise OSError(f"{cfg.name}: resource unavailable")
    return x * 2


@pf.stage(version="1", retries=2)
def flaky(cfg: LogCfg) -> float:
    """Fails on its first ``fail_times`` attempts (counted in a file)."""
    attempt = _log(cfg, "runs")
    if attempt <= cfg.fail_times:
        raise RuntimeError(f"transient failure {attempt}")
    return cfg.value


@pf.stage(version="1")
def die(cfg: LogCfg) -> float:
    """Kill the worker process running it (a stand-in for a segfault or an OOM kill)."""
    if cfg.wait_for:
        deadline = time.monotonic() + 60
        while not Path(cfg.wait_for).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    _log(cfg, "runs")
    os.kill(os.getpid(), signal.SIGKILL)
    return 0.0


@pf.stage(version="1", retries=1)
def die_once(cfg: LogCfg) -> float:
    """Kills its worker on the first attempt only."""
    if _log(cfg, "runs") == 1:
        os._exit(3)
    return cfg.value


@pf.stage(version="1")
def touch_done(cfg: LogCfg) -> float:
    _log(cfg, "runs")
    (Path(cfg.log_dir) / f"{cfg.name}.done").touch()
    return cfg.value


@pf.stage(version="1")
def slow(cfg: LogCfg) -> float:
    started = Path(cfg.log_dir) / f"{cfg.name}.started"
    started.with_suffix(".tmp").write_text(str(os.getpid()))
    started.with_suffix(".tmp").rename(started)  # whole: the test reads the pid once it exists
    time.sleep(cfg.seconds)
    return cfg.value


@pf.stage(version="1")
def light(cfg: LogCfg) -> float:
    _interval(cfg)
    return cfg.value


@pf.stage(version="1", resources={"cpus": 2})
def heavy(cfg: LogCfg) -> float:
    _interval(cfg)
    return cfg.value


@pf.stage(version="1", resources={"gpus": 1})
def on_gpu(cfg: LogCfg) -> float:
    _interval(cfg)
    return cfg.value


class EnvName(pf.Config):
    name: str


@pf.stage(version="1")
def env_value(cfg: EnvName) -> str:
    """The worker's value of an environment variable ("" when unset)."""
    return os.environ.get(cfg.name, "")
