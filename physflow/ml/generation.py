"""``pf.ml.generate``: a pipeline (or spec) -> a sharded, resumable, cached dataset."""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec

import physflow as pf

from . import _engine, card, shards
from . import progress as progress_mod
from . import spec as spec_mod
from .distributions import stored_dtype, to_builtins
from .program import Program
from .spec import DatasetSpec

EXECUTORS = ("serial", "threads", "processes", "dask")


class GenerationError(RuntimeError):
    """Generation stopped (a sample failed, a worker died); finished shards are kept."""


def resolve(
    source: Any, overrides: dict[str, Any] | None = None, **given: Any
) -> tuple[Any, DatasetSpec]:
    """Pipeline and complete DatasetSpec from a pipeline/spec plus Python arguments."""
    if isinstance(source, str | os.PathLike):
        pipeline, base, missing = spec_mod.load_with_errors(source, overrides)
    elif isinstance(source, pf.Pipeline):
        pipeline = source.with_values(overrides) if overrides else source
        base = DatasetSpec()
        missing = spec_mod.missing_error("pf.ml.generate()", None)
    else:
        raise TypeError(f"generate() takes a pf.Pipeline or a spec path, not {source!r}")
    err = spec_mod.python_errors()
    values = msgspec.structs.asdict(base)
    where = ("generate",)
    for key in ("samples", "shard_size"):
        if given.get(key) is not None:
            values[key] = spec_mod._int(given[key], (*where, key), err, minimum=1)
    if given.get("seed") is not None:
        values["seed"] = spec_mod._int(given["seed"], (*where, "seed"), err, minimum=0)
    if given.get("name") is not None:
        values["name"] = spec_mod.check_name(given["name"], (*where, "name"), err)
    if given.get("compress") is not None:
        values["compress"] = bool(given["compress"])
    if given.get("vary") is not None:
        values["vary"] = spec_mod.parse_vary(given["vary"], pipeline, err, (*where, "vary"))
    if given.get("outputs") is not None:
        values["outputs"] = spec_mod.parse_outputs(
            given["outputs"], pipeline, err, (*where, "outputs")
        )
    if given.get("split") is not None:
        values["split"] = spec_mod.parse_split(given["split"], err, (*where, "split"))
    if values["samples"] is None:
        raise missing(
            "how many samples? set 'samples:' in the dataset section (or pass samples=N, "
            "--samples N)",
            "samples",
        )
    if not values["outputs"]:
        raise missing(
            "a dataset needs outputs: set 'outputs: {x: node.output}' in the dataset section "
            "(or pass outputs={...})",
            "outputs",
        )
    if values["seed"] is None:
        values["seed"] = pipeline.seed
    if values["name"] is None:
        values["name"] = spec_mod.check_name(pipeline.name, (*where, "name"), err)
    return pipeline, DatasetSpec(**values)


def generate(
    source: Any,
    *,
    samples: int | None = None,
    vary: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    shard_size: int | None = None,
    split: dict[str, float] | None = None,
    name: str | None = None,
    seed: int | None = None,
    store: Any = None,
    executor: Any = "serial",
    workers: int | None = None,
    compress: bool | None = None,
    progress: Any = None,
    overrides: dict[str, Any] | None = None,
    verify: bool = False,
) -> Any:
    """Generate (or complete, or grow) a dataset and return it; see docs/ml.md.

    ``verify=True`` re-reads the shards found in the store and recomputes corrupt ones."""
    pipeline, spec = resolve(
        source,
        overrides,
        samples=samples,
        vary=vary,
        outputs=outputs,
        shard_size=shard_size,
        split=split,
        name=name,
        seed=seed,
        compress=compress,
    )
    _engine.check_main_guard(executor)
    store = _engine.open_store(store)
    assert spec.samples is not None and spec.seed is not None
    program = Program(pipeline, spec, spec.seed)
    ident = shards.identity(pipeline, program, spec, spec.seed)
    job = shards.Job(pipeline, spec, spec.seed, ident, store, spec.compress, verify)
    todo = shards.ranges(spec.samples, spec.shard_size)
    t0 = time.perf_counter()
    bar = progress_mod.make(progress, spec.samples, len(todo))
    with bar:
        results, how, n_workers = _run(job, todo, executor, workers, bar)
    the_card = build_card(job, pipeline, program, results, time.perf_counter() - t0)
    the_card.generation.executor, the_card.generation.workers = how, n_workers
    card.write(store, the_card)
    _engine.touch_records(store, [s.key for s in the_card.shards])
    from .dataset import Dataset

    return Dataset(the_card, store)


# -- executors ------------------------------------------------------------------------------------


def _run(
    job: shards.Job, todo: list[tuple[int, int]], executor: Any, workers: int | None, bar: Any
) -> tuple[list[shards.ShardResult], str, int]:
    if executor in (None, "serial"):
        results = []
        for a, b in todo:
            before = bar.computed
            result = shards.build_shard(job, a, b, on_sample=bar.sample)
            bar.shard(result, counted=bar.computed - before)
            results.append(result)
        return results, "serial", 1
    if executor == "threads":
        from concurrent.futures import ThreadPoolExecutor

        n = workers or os.cpu_count() or 1
        with ThreadPoolExecutor(n, thread_name_prefix="physflow-ml") as pool:
            return _collect(pool, job, todo, bar), "threads", n
    if executor == "processes":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        n = workers or os.cpu_count() or 1
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ProcessPoolExecutor(n, mp_context=ctx) as pool:
            return _collect(pool, job, todo, bar), "processes", n
    if executor == "dask" or _is_dask_client(executor):
        return _run_dask(job, todo, executor, workers, bar)
    raise ValueError(
        f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)} or a distributed.Client"
    )


def _collect(pool: Any, job: shards.Job, todo: list, bar: Any) -> list[shards.ShardResult]:
    from concurrent.futures import FIRST_COMPLETED, wait

    futures = {pool.submit(shards.build_shard, job, a, b): (a, b) for a, b in todo}
    done_results: dict[int, shards.ShardResult] = {}
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                bar.shard(result)
                done_results[result.info.start] = result
    except BaseException as exc:
        for future in pending:
            future.cancel()
        if isinstance(exc, Exception):
            raise GenerationError(f"{type(exc).__name__}: {exc}") from exc
        raise
    return [done_results[a] for a, _ in todo]


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _run_dask(
    job: shards.Job, todo: list, executor: Any, workers: int | None, bar: Any
) -> tuple[list[shards.ShardResult], str, int]:
    from distributed import as_completed

    client = executor if _is_dask_client(executor) else _engine.local_dask_client(workers)
    try:
        n = len(client.scheduler_info().get("workers", {})) or 1
        futures = [client.submit(shards.build_shard, job, a, b, pure=False) for a, b in todo]
        by_start: dict[int, shards.ShardResult] = {}
        try:
            for future in as_completed(futures):
                result = future.result()
                bar.shard(result)
                by_start[result.info.start] = result
        except Exception as exc:
            client.cancel(futures)
            raise GenerationError(f"{type(exc).__name__}: {exc}") from exc
        return [by_start[a] for a, _ in todo], "dask", n
    finally:
        if client is not executor:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()


# -- the card -------------------------------------------------------------------------------------


def build_card(
    job: shards.Job, pipeline: Any, program: Program, results: list, duration: float
) -> card.DatasetCard:
    spec = job.spec
    fields = {}
    for name, field in spec.outputs.items():
        dtype, shape = _merge_field(name, [r.fields[name] for r in results])
        node_id, output, _keys = program.fields[name]
        units = field.units or _stage_units(pipeline.nodes[node_id].stage, output)
        ragged = None in shape or any(r.info.layout.get(name) == "ragged" for r in results)
        fields[name] = card.FieldInfo(field.ref, dtype, shape, ragged, units)
    params = {
        path: card.ParamInfo(
            to_builtins(d), None if stored_dtype(d) is None else stored_dtype(d).str
        )
        for path, d in sorted(spec.vary.items())
    }
    gen = card.GenerationInfo(
        computed_samples=sum(r.computed for r in results),
        reused_samples=sum(r.info.stop - r.info.start - r.computed for r in results),
        computed_shards=sum(not r.reused and not r.extended for r in results),
        reused_shards=sum(r.reused for r in results),
        extended_shards=sum(r.extended for r in results),
        duration_s=duration,
    )
    return card.DatasetCard(
        schema_version=card.CARD_VERSION,
        name=str(spec.name),
        identity=job.identity,
        pipeline=pipeline.name,
        seed=int(job.seed),
        samples=int(spec.samples or 0),
        shard_size=spec.shard_size,
        created=time.time(),
        store=_engine.store_location(job.store),
        environment=_engine.capture_environment(),
        fields=fields,
        params=params,
        stages=[_stage_info(pipeline, n) for n in program.node_ids],
        shards=[r.info for r in results],
        spec_path=getattr(pipeline, "spec_path", None),
        spec_digest=getattr(pipeline, "spec_digest", None),
        split=spec.split,
        compress=spec.compress,
        raw_bytes=sum(r.info.raw_bytes for r in results),
        stored_bytes=sum(r.info.stored_bytes for r in results),
        generation=gen,
    )


def _merge_field(name: str, parts: list[tuple[str, list[int | None]]]) -> tuple[str, list]:
    dtypes = {d for d, _ in parts}
    if len(dtypes) > 1:
        raise GenerationError(
            f"output field '{name}' has dtypes {sorted(dtypes)} in different shards; a field "
            "needs one dtype (cast in the stage)"
        )
    ranks = {len(s) for _, s in parts}
    if len(ranks) > 1:
        raise GenerationError(f"output field '{name}' has samples of ranks {sorted(ranks)}")
    shapes = [s for _, s in parts]
    merged = [
        dims[0] if None not in dims and len(set(dims)) == 1 else None for dims in zip(*shapes)
    ]
    return dtypes.pop(), merged


def _stage_units(stage: Any, output: str) -> str | None:
    units = getattr(stage, "units", None)
    if isinstance(units, str):
        return units if output == _engine.SINGLE_OUTPUT else None
    if isinstance(units, dict):
        return units.get(output)
    return None


def _stage_info(pipeline: Any, node_id: str) -> card.StageInfo:
    node = pipeline.nodes[node_id]
    config = None
    if node.config is not None:
        config = msgspec.to_builtins(node.config, enc_hook=_plain)
    return card.StageInfo(
        node=node_id,
        stage=node.stage.name,
        version=node.stage.version,
        fingerprint=node.stage.fingerprint,
        config_digest=node.config_digest if node.config is not None else None,
        config=config,
        inputs={name: str(ref) for name, ref in node.inputs.items()},
        uses_rng=node.stage.uses_rng,
    )


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else repr(value)
