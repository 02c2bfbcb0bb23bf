"""Stages used by the store tests (importable by worker subprocesses)."""

from __future__ import annotations

import os

import numpy as np

import physflow as pf

#: Per-process execution counts (tests in this process read them).
CALLS: dict[str, int] = {}


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1
    log = os.environ.get("PHYSFLOW_TEST_CALL_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{name}\n")


class RampConfig(pf.Config):
    n: int
    scale: float = 1.0


@pf.stage(version="1")
def ramp(cfg: RampConfig) -> np.ndarray:
    _count("ramp")
    return np.arange(cfg.n, dtype=np.float64) * cfg.scale


@pf.stage(version="1")
def square(x: np.ndarray) -> np.ndarray:
    _count("square")
    return np.asarray(x) ** 2


@pf.stage(version="1")
def total(x: np.ndarray) -> float:
    _count("total")
    return float(np.sum(x))


class FieldConfig(pf.Config):
    rows: int
    cols: int
    chunk_rows: int
    chunk_cols: int = 0
    reverse: bool = False


def field_block(region: tuple[slice, ...], cols: int) -> np.ndarray:
    """Deterministic content of a region of the test field: f[i, j] = i * cols + j."""
    r, c = region
    i = np.arange(r.start, r.stop, dtype=np.float64)[:, None]
    j = np.arange(c.start, c.stop, dtype=np.float64)[None, :]
    return (i * cols + j).astype(np.float32)


@pf.stage(version="1", outputs=["field", "rows"], deps=[field_block])
def stream_field(cfg: FieldConfig, *, ctx: pf.StageContext) -> dict:
    _count("stream_field")
    chunks = (cfg.chunk_rows, cfg.chunk_cols or cfg.cols)
    out = ctx.output_array("field", (cfg.rows, cfg.cols), np.float32, chunks=chunks)
    indices = out.chunk_indices()
    if cfg.reverse:
        indices = indices[::-1]
    for index in indices:
        out.write_chunk(index, field_block(out.region(index), cfg.cols))
    return {"field": out, "rows": cfg.rows}


@pf.stage(version="1", lazy=["field"])
def block_sums(field) -> np.ndarray:
    """Sums each chunk row of a lazily delivered field without loading it whole."""
    _count("block_sums")
    import dask.array as da

    assert isinstance(field, da.Array), type(field)
    return np.array([float(field.blocks[i].sum().compute()) for i in range(field.numblocks[0])])


@pf.stage(version="1", outputs=["field"])
def stream_incomplete(*, ctx: pf.StageContext) -> dict:
    out = ctx.output_array("field", (10, 4), np.float64, chunks=(5, 4))
    out.write_chunk((0, 0), np.zeros((5, 4)))
    return {"field": out}


@pf.stage(version="1", outputs=["field"])
def stream_then_fail(*, ctx: pf.StageContext) -> dict:
    out = ctx.output_array("field", (10, 4), np.float64, chunks=(5, 4))
    out.write_chunk((0, 0), np.zeros((5, 4)))
    raise RuntimeError("simulated failure after a chunk")


class Opaque:
    """A type without a codec."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.v == self.v


@pf.stage(version="1")
def make_opaque() -> Opaque:
    return Opaque(7)


@pf.stage(version="1", pickle=True)
def make_opaque_pickled() -> Opaque:
    return Opaque(7)


class BigConfig(pf.Config):
    seed: int
    mib: int = 4


@pf.stage(version="1")
def big_random(cfg: BigConfig) -> np.ndarray:
    _count("big_random")
    rng = np.random.default_rng(cfg.seed)
    return rng.standard_normal(cfg.mib * (1 << 20) // 8)


@pf.stage(version="1")
def mean_of(x: np.ndarray) -> float:
    _count("mean_of")
    return float(np.mean(x))


@pf.stage(version="1", compress=True)
def ramp_zstd(cfg: RampConfig) -> np.ndarray:
    return np.round(np.arange(cfg.n, dtype=np.float64) * cfg.scale, 1)


@pf.stage(version="1", compress=False)
def ramp_raw(cfg: RampConfig) -> np.ndarray:
    return np.round(np.arange(cfg.n, dtype=np.float64) * cfg.scale, 1)


class StepConfig(pf.Config):
    index: int
    kill: bool = False
    pause_s: float = 0.0


@pf.stage(version="1")
def step(cfg: StepConfig, x: float) -> float:
    """One link of a chain; ``kill`` SIGKILLs the running process (a crash mid-run)."""
    if cfg.kill:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if cfg.pause_s:
        import time

        time.sleep(cfg.pause_s)
    return x + cfg.index


@pf.stage(version="1")
def zero() -> float:
    return 0.0


def chain(length: int, kill_at: int | None = None, pause_s: float = 0.0) -> pf.Pipeline:
    p = pf.Pipeline("deferred-chain", seed=0)
    p.add("s0", zero)
    for i in range(1, length):
        cfg = StepConfig(index=i, kill=i == kill_at, pause_s=pause_s)
        p.add(f"s{i}", step, cfg, x=f"s{i - 1}")
    return p


def run_chain(root: str, length: int, kill_at: int | None = None, pause_s: float = 0.0) -> None:
    """Entry point for a child process: a serial run that may crash part way."""
    chain(length, kill_at, pause_s).run(store=pf.Store(root), write_manifest=False)


class ChunkSumConfig(pf.Config):
    n: int
    chunk: int


def chunk_cumsum(block: np.ndarray, carry: float) -> np.ndarray:
    """One chunk of a running sum: work worth caching on its own (see ``ctx.memo``)."""
    _count("chunk_cumsum")
    return carry + np.cumsum(block)


@pf.stage(version="1")
def memo_cumsum(cfg: ChunkSumConfig, *, ctx: pf.StageContext) -> np.ndarray:
    """A running sum over ``arange(n)`` computed chunk by chunk, each chunk memoised."""
    data = np.arange(cfg.n, dtype=np.float64)
    parts, carry = [], 0.0
    for start in range(0, cfg.n, cfg.chunk):
        part = ctx.memo(chunk_cumsum, data[start : start + cfg.chunk], carry)
        parts.append(part)
        carry = float(part[-1])
    _count(f"memo:{ctx.memo_hits}/{ctx.memo_misses}")
    return np.concatenate(parts)


def memo_key_for_test(n: int) -> str:
    """The memo key of the single chunk of ``memo_cumsum(n=n, chunk>=n)``."""
    from physflow.artifacts.context import memo_key

    return memo_key(chunk_cumsum, (np.arange(n, dtype=np.float64), 0.0), {})
