"""Stages and pipelines of the crash, concurrent-gc and corruption suites.

Importable by worker processes (``tests.reliability.crash_stages``). Every stage appends
``start:<tag>`` and ``done:<tag>`` to the file named by ``$PHYSFLOW_RELIABILITY_LOG`` (when
set), so a test counts executions per node across processes. Each config carries the ``tag``
of its node: equal tags mean equal keys, so workers that share a tag share the work.

The expected value of every node is computed independently in :mod:`.crash_truth` (plain
numpy on the same seeds), never through these functions.
"""

from __future__ import annotations

import os

import numpy as np

import physflow as pf

LOG_ENV = "PHYSFLOW_RELIABILITY_LOG"

# The execution log never changes a value, so stages read it without declaring it in deps.


def log(event: str) -> None:
    """Append one line to the execution log (one ``write`` with O_APPEND: atomic)."""
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event}\n".encode())
    finally:
        os.close(fd)


class Gen(pf.Config):
    tag: str
    seed: int
    n: int


class Scale(pf.Config):
    tag: str
    factor: float


class Tag(pf.Config):
    tag: str


class Field(pf.Config):
    tag: str
    seed: int
    rows: int
    cols: int
    chunk_rows: int


@pf.stage(version="1", warn_untracked=False)
def gen(cfg: Gen) -> np.ndarray:
    log(f"start:{cfg.tag}")
    out = np.random.default_rng(cfg.seed).standard_normal(cfg.n)
    log(f"done:{cfg.tag}")
    return out


@pf.stage(version="1", warn_untracked=False)
def scale(cfg: Scale, x: np.ndarray) -> np.ndarray:
    log(f"start:{cfg.tag}")
    out = x * cfg.factor
    log(f"done:{cfg.tag}")
    return out


@pf.stage(version="1", warn_untracked=False)
def total(cfg: Tag, x: np.ndarray) -> float:
    log(f"start:{cfg.tag}")
    out = float(np.sum(x))
    log(f"done:{cfg.tag}")
    return out


@pf.stage(version="1", warn_untracked=False)
def combine(cfg: Tag, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    log(f"start:{cfg.tag}")
    out = a - 2.0 * b
    log(f"done:{cfg.tag}")
    return out


@pf.stage(version="1", outputs=["lo", "hi"], warn_untracked=False)
def split(cfg: Tag, x: np.ndarray) -> dict:
    log(f"start:{cfg.tag}")
    half = len(x) // 2
    out = {"lo": x[:half].copy(), "hi": x[half:][::-1].copy()}
    log(f"done:{cfg.tag}")
    return out


@pf.stage(version="1", warn_untracked=False)
def to_blob(cfg: Tag, x: np.ndarray) -> bytes:
    log(f"start:{cfg.tag}")
    out = np.ascontiguousarray(x[:8192]).tobytes()  # 64 KiB: a blob object, not inline
    log(f"done:{cfg.tag}")
    return out


def field_chunk(seed: int, index: int, rows: int, cols: int) -> np.ndarray:
    """Content of chunk ``index`` of a streamed field (rows ``index*rows`` onwards)."""
    return np.random.default_rng([seed, index]).standard_normal((rows, cols)).astype(np.float32)


@pf.stage(version="1", outputs=["field", "rows"], deps=[field_chunk], warn_untracked=False)
def stream(cfg: Field, *, ctx: pf.StageContext) -> dict:
    """A multi-chunk array written chunk by chunk (each chunk its own file)."""
    log(f"start:{cfg.tag}")
    out = ctx.output_array(
        "field", (cfg.rows, cfg.cols), np.float32, chunks=(cfg.chunk_rows, cfg.cols)
    )
    for i, index in enumerate(out.chunk_indices()):
        out.write_chunk(index, field_chunk(cfg.seed, i, cfg.chunk_rows, cfg.cols))
    log(f"done:{cfg.tag}")
    return {"field": out, "rows": cfg.rows}


@pf.stage(version="1", warn_untracked=False)
def row_means(cfg: Tag, field: np.ndarray) -> np.ndarray:
    log(f"start:{cfg.tag}")
    out = np.asarray(field, dtype=np.float64).mean(axis=1)
    log(f"done:{cfg.tag}")
    return out


@pf.stage(version="1", warn_untracked=False)
def to_dataset(cfg: Tag, x: np.ndarray):  # -> xarray.Dataset (xarray imported lazily)
    """An xarray value: a zarr group with one array per variable, attributes and units."""
    import xarray as xr

    log(f"start:{cfg.tag}")
    n = len(x) // 4
    out = xr.Dataset(
        {"v": (("t",), x[:n].copy(), {"units": "V"}), "w": (("t",), x[n : 2 * n] ** 2)},
        coords={"t": np.arange(n, dtype=np.int64)},
        attrs={"title": "reliability", "scale": 2.5},
    )
    log(f"done:{cfg.tag}")
    return out


def crash_pipeline(trial: int, n: int = 1 << 18) -> pf.Pipeline:
    """15 nodes writing ~14 MiB: three random arrays and what derives from them, a streamed
    16-chunk field, a two-output split, a blob and scalars (values: ``crash_truth``). Each
    node's tag is its id."""
    p = pf.Pipeline(f"crash{trial}", seed=trial)
    seeds = [3 * trial + k for k in range(3)]
    for s in seeds:
        p.add(f"g{s}", gen, Gen(tag=f"g{s}", seed=s, n=n))
        p.add(f"s{s}", scale, Scale(tag=f"s{s}", factor=1.5), x=f"g{s}")
        p.add(f"t{s}", total, Tag(tag=f"t{s}"), x=f"s{s}")
    field = Field(tag="field", seed=trial, rows=512, cols=512, chunk_rows=32)
    p.add("field", stream, field)
    p.add("means", row_means, Tag(tag="means"), field="field.field")
    p.add("mix", combine, Tag(tag="mix"), a=f"s{seeds[0]}", b=f"g{seeds[1]}")
    p.add("halves", split, Tag(tag="halves"), x="mix")
    p.add("blob", to_blob, Tag(tag="blob"), x=f"g{seeds[2]}")
    p.add("mixsum", total, Tag(tag="mixsum"), x="halves.hi")
    return p


def overlap_pipeline(seeds: tuple[int, ...], factor: float, n: int = 1 << 16) -> pf.Pipeline:
    """A pipeline of the concurrent-gc suite: ``g<seed>`` nodes are shared by every worker that
    draws the same seed; ``factor`` makes the scaled nodes differ between workers."""
    p = pf.Pipeline("overlap-" + "-".join(map(str, seeds)) + f"-{factor}")
    for s in seeds:
        p.add(f"g{s}", gen, Gen(tag=f"g{s}", seed=s, n=n))
        p.add(f"s{s}", scale, Scale(tag=f"s{s}x{factor}", factor=factor), x=f"g{s}")
        p.add(f"t{s}", total, Tag(tag=f"t{s}x{factor}"), x=f"s{s}")
    a, b = seeds[0], seeds[-1]
    p.add("mix", combine, Tag(tag=f"mix{a}-{b}x{factor}"), a=f"s{a}", b=f"g{b}")
    p.add("mixsum", total, Tag(tag=f"mixsum{a}-{b}x{factor}"), x="mix")
    return p


class GcNow(pf.Config):
    tag: str
    root: str


@pf.stage(version="1", warn_untracked=False)
def gc_now(cfg: GcNow) -> float:
    """An aggressive gc of the run's own store from inside the run (every record and object
    goes), so inputs planned as hits vanish before their consumers read them."""
    log(f"start:{cfg.tag}")
    pf.Store(cfg.root).gc(max_bytes=0, keep_manifests=0)
    log(f"done:{cfg.tag}")
    return 1.0


@pf.stage(version="1", outputs=["field"], warn_untracked=False)
def stream_during_gc(cfg: GcNow, *, ctx: pf.StageContext) -> dict:
    """Streams a 4-chunk array and runs ``gc(tmp_grace_s=0)`` after its first chunk: the
    writer is alive, its temp entry is a write in progress."""
    out = ctx.output_array("field", (64, 64), np.float32, chunks=(16, 64))
    for i, index in enumerate(out.chunk_indices()):
        out.write_chunk(index, np.full((16, 64), i, dtype=np.float32))
        if i == 0:
            pf.Store(cfg.root).gc(tmp_grace_s=0.0)
    return {"field": out}


@pf.stage(version="1", warn_untracked=False)
def length(cfg: Tag, a: float, b: np.ndarray) -> int:
    """How many values ``b`` holds: tolerant of any sized input, so a wrong input type shows
    up as a wrong value instead of an error."""
    log(f"start:{cfg.tag}")
    out = len(b)
    log(f"done:{cfg.tag}")
    return out
