"""Shards: the unit of generation, caching and reading.

A shard holds samples ``[start, stop)`` with ``start`` a multiple of the shard size. Its cache
key is a Merkle hash of the dataset identity (stage fingerprints, configs and wiring of the
nodes the outputs need, vary distributions, dataset seed, output refs, encoding version) and the
sample range. A shard is computed by one worker, its arrays stored as zarr v3 objects, and then
recorded in the action cache under its key (record last), so a killed generation leaves only
whole shards behind and the next one computes exactly the missing ones.

A shorter last shard (``stop - start < shard_size``) is also recorded under a *tail* key of
(identity, start): when the dataset grows, the full shard starting there reuses its samples
and computes only the new ones. A shorter last shard of a shrunk dataset takes its samples
from the tail or the full shard that starts where it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import physflow as pf

from . import _engine, encoding
from .card import ShardInfo
from .program import Program
from .spec import DatasetSpec

FORMAT = "physflow.ml.v1"


@dataclass
class Job:
    """Everything a worker needs to build shards (picklable: stages travel by import path)."""

    pipeline: Any
    spec: DatasetSpec
    seed: int
    identity: str
    store: Any
    compress: bool = False
    #: Re-read (digest-check) shards found in the cache; a corrupt one is quarantined and
    #: computed again.
    verify: bool = False


@dataclass
class ShardResult:
    info: ShardInfo
    fields: dict[str, tuple[str, list[int | None]]]  # name -> (dtype, per-sample shape)
    computed: int = 0
    reused: bool = False
    extended: bool = False
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def identity(pipeline: Any, program: Program, spec: DatasetSpec, seed: int) -> str:
    """Digest of everything that decides the samples' values (not their count or sharding)."""
    nodes = []
    for node_id in program.node_ids:
        node = pipeline.nodes[node_id]
        wiring = sorted((name, str(ref)) for name, ref in node.inputs.items())
        nodes.append(
            (
                node_id,
                node.stage.name,
                node.stage.version,
                node.stage.fingerprint,
                node.config_digest if node.config is not None else "",
                tuple(wiring),
                node.stage.uses_rng,
            )
        )
    from .distributions import to_builtins

    vary = {path: to_builtins(d) for path, d in spec.vary.items()}
    outputs = {name: f.ref for name, f in spec.outputs.items()}
    return pf.digest((FORMAT, tuple(nodes), vary, int(seed), outputs))


def shard_key(ident: str, start: int, stop: int) -> str:
    return pf.digest(("physflow.ml.shard", ident, int(start), int(stop)))


def tail_key(ident: str, start: int) -> str:
    return pf.digest(("physflow.ml.tail", ident, int(start)))


def ranges(samples: int, shard_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + shard_size, samples)) for a in range(0, samples, shard_size)]


# -- building one shard (runs in the worker) ------------------------------------------------------

_PROGRAMS: dict[str, Program] = {}


def program_for(job: Job) -> Program:
    program = _PROGRAMS.get(job.identity)
    if program is None:
        program = Program(job.pipeline, job.spec, job.seed)
        program.store = job.store
        _PROGRAMS.clear()
        _PROGRAMS[job.identity] = program
    return program


def load_arrays(store: Any, digests: dict[str, str]) -> dict[str, np.ndarray]:
    return {name: _engine.load_array(store, d) for name, d in digests.items()}


def _intact(store: Any, digests: dict[str, str]) -> bool:
    """Read every array of a shard; quarantine (and report) a corrupt one."""
    try:
        load_arrays(store, digests)
    except pf.CorruptObjectError as exc:
        store.quarantine(exc.digest or "")
        return False
    return True


def build_shard(
    job: Job, start: int, stop: int, on_sample: Callable[[], None] | None = None
) -> ShardResult:
    """Shard ``[start, stop)``: served from the cache, extended from a shorter one, or computed."""
    t0 = time.perf_counter()
    store = job.store
    fields = list(job.spec.outputs)
    key = shard_key(job.identity, start, stop)
    found = _engine.get_shard(store, key)
    if found is not None:
        digests = {name: entry[0] for name, entry in found.items()}
        if not job.verify or _intact(store, digests):
            return _result(job, start, stop, key, digests, found, reused=True, t0=t0)
    samples: list[dict[str, np.ndarray]] = []
    params: list[dict[str, Any]] = []
    extended, keep = False, 0
    tail = _engine.get_shard(store, tail_key(job.identity, start))
    if tail is None and stop - start < job.spec.shard_size:  # a shrunk dataset's last shard
        tail = _engine.get_shard(store, shard_key(job.identity, start, start + job.spec.shard_size))
    if tail is not None:
        old = encoding.ShardData(
            load_arrays(store, {n: e[0] for n, e in tail.items()}), fields, job.spec.vary
        )
        keep = min(old.n, stop - start)
        samples, params = old.samples()[:keep], old.stored_params()[:keep]
        extended = True
    program = program_for(job)
    for i in range(start + len(samples), stop):
        sample, stored = program.run(i)
        samples.append(sample)
        params.append(stored)
        if on_sample is not None:
            on_sample()
    arrays = encoding.encode_shard(samples, params, fields, job.spec.vary, start)
    stored_objects = {
        name: (_engine.put_array(store, array, job.compress), array)
        for name, array in arrays.items()
    }
    duration = time.perf_counter() - t0
    label = f"{job.spec.name}[{start}:{stop}]"
    _engine.put_shard(store, key, job.identity, stored_objects, duration, label)
    if stop - start < job.spec.shard_size:
        _engine.put_shard(store, tail_key(job.identity, start), job.identity, stored_objects,
                          duration, label + " tail")  # fmt: skip
    digests = {name: d for name, (d, _a) in stored_objects.items()}
    meta = {
        name: (d, a.dtype.str, tuple(a.shape), int(a.nbytes))
        for name, (d, a) in stored_objects.items()
    }
    result = _result(job, start, stop, key, digests, meta, reused=False, t0=t0, arrays=arrays)
    result.computed = stop - start - keep
    result.extended = extended
    return result


def _result(
    job: Job,
    start: int,
    stop: int,
    key: str,
    digests: dict[str, str],
    meta: dict[str, tuple[str, str, tuple[int, ...], int]],
    *,
    reused: bool,
    t0: float,
    arrays: dict[str, np.ndarray] | None = None,
) -> ShardResult:
    fields = list(job.spec.outputs)
    n = encoding.count({name: m[2] for name, m in meta.items()}, fields)
    if n != stop - start:
        raise RuntimeError(f"shard record {key} holds {n} samples, expected {stop - start}")
    summary = {}
    for name in fields:
        dtype = meta[name][1]
        if f"{name}/offsets" not in meta:
            shape: list[int | None] = list(meta[name][2][1:])
        elif f"{name}/shapes" not in meta:
            shape = [None]
        else:
            shapes = (
                arrays[f"{name}/shapes"]
                if arrays is not None
                else _engine.load_array(job.store, digests[f"{name}/shapes"])
            )
            shape = [int(c[0]) if (c == c[0]).all() else None for c in np.asarray(shapes).T]
        summary[name] = (dtype, shape)
    raw = sum(m[3] for m in meta.values())
    stored = sum(_engine.object_bytes(job.store, d) for d in digests.values())
    info = ShardInfo(
        start=start,
        stop=stop,
        key=key,
        arrays=dict(sorted(digests.items())),
        layout=encoding.layout(meta, fields),
        raw_bytes=raw,
        stored_bytes=stored,
    )
    return ShardResult(info, summary, reused=reused, duration_s=time.perf_counter() - t0)
