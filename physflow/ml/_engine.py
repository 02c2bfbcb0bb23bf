"""The one place where physflow.ml touches physflow internals (everything not in ``physflow``).

The kernel is being restructured (issue 11): when modules move, only the imports in this file
need repointing. Every function here is small and says which internal it wraps; the rest of
``physflow.ml`` calls these and the public API (``import physflow as pf``) only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

# -- internals used (keep this list in sync with the report / docs/ml.md) ------------------------
from ..artifacts.arrays import default_chunks, write_chunked, zarr_supports
from ..artifacts.codecs import read_array as _read_array
from ..artifacts.store import default_store_path, open_store
from ..core.records import ActionRecord, OutputEntry
from ..core.refs import SINGLE_OUTPUT
from ..core.suggest import closest
from ..manifests.environment import capture_environment
from ..manifests.schema import Environment
from ..pipeline.main_guard import check_main_guard
from ..pipeline.rng import node_generator
from ..pipeline.sharing import MUTABLE as _MUTABLE
from ..pipeline.sharing import read_only as _read_only
from ..pipeline.spec import load_spec_full, parse_set_option
from ..pipeline.task import invoke_stage
from ..pipeline.task import split_outputs as _split_outputs

__all__ = [
    "SINGLE_OUTPUT",
    "Environment",
    "array_path",
    "capture_environment",
    "check_main_guard",
    "closest",
    "default_store_path",
    "get_shard",
    "lazy_array",
    "list_files",
    "load_array",
    "load_spec_full",
    "open_store",
    "parse_set_option",
    "put_array",
    "put_shard",
    "read_file",
    "stage_caller",
    "touch_records",
    "write_file",
]

#: Stage name recorded in the action record of a dataset shard.
SHARD_STAGE = "physflow.ml:shard"


# -- stage execution (pipeline.task.invoke_stage, without a Task per call) ---------------------


def stage_caller(stage: Any, node_id: str) -> Callable[[Any, dict[str, Any], int], dict]:
    """``call(config, inputs, seed) -> {output: value}`` for one node, as the runner calls it:
    inputs read-only, ``rng`` derived from (seed, node id), numpy's global state guarded
    (``pipeline.task.invoke_stage``). Stages that ask for ``ctx`` are not supported here."""
    uses_rng = stage.uses_rng

    def call(config: Any, inputs: dict[str, Any], seed: int) -> dict:
        kwargs = {k: _shared(v) for k, v in inputs.items()}
        if uses_rng:
            kwargs["rng"] = node_generator(seed, node_id)
        result, _notes = invoke_stage(stage, node_id, config, kwargs)
        return _split_outputs(stage, result)

    return call


def _shared(value: Any) -> Any:
    """A value as consumers receive it from the runner (arrays read-only, no copy)."""
    shared = _read_only(value)
    if shared is _MUTABLE:  # the runner would hand over a private copy from the store
        import copy

        return copy.deepcopy(value)
    return shared


# -- objects and shard records --------------------------------------------------------------------


#: Shard arrays are chunked along the sample axis in pieces of at most this many bytes: a
#: reader verifies each chunk with single-threaded blake3, which stays safe in DataLoader
#: workers forked from a process that hashed large buffers (blake3's thread pool does not
#: survive fork; see docs/ml.md), and a single sample can be read without its whole shard.
CHUNK_BYTES = 512 << 10


def put_array(store: Any, array: np.ndarray, compress: bool = False) -> str:
    """Store ``array`` as a zarr v3 array object (never inline), chunked along axis 0 into
    pieces of about ``CHUNK_BYTES``; returns its digest (= ``pf.digest(array)``)."""
    array = np.ascontiguousarray(array) if np.ndim(array) else np.asarray(array)
    if compress or array.nbytes <= CHUNK_BYTES or not zarr_supports(array.dtype):
        return store.put_array_object(array, compress)
    chunks = default_chunks(array.shape, array.dtype.itemsize, target=CHUNK_BYTES)

    def write(sink: Any) -> str:
        d, _meta = write_chunked(sink, "", array, compress=False, chunks=chunks)
        return d

    return store.write_object(write)


def load_array(store: Any, d: str) -> np.ndarray:
    """Object ``d`` as a numpy array, every chunk verified (``CorruptObjectError`` otherwise)."""
    return _read_array(store.array_reader(d))


def lazy_array(store: Any, d: str) -> Any:
    """Object ``d`` as a dask array whose chunks are verified when computed."""
    return _read_array(store.array_reader(d), lazy=True)


def array_path(store: Any, d: str) -> str:
    """Where object ``d`` lives (for peers that open it with zarr directly)."""
    return str(store.object_path(d))


def put_shard(
    store: Any,
    key: str,
    identity: str,
    arrays: dict[str, tuple[str, np.ndarray]],
    duration_s: float,
    label: str,
) -> None:
    """Record a shard in the action cache: ``arrays`` maps name -> (digest, array) of objects
    already stored (record-last, so gc and verify see which objects the shard uses)."""
    outputs = {
        name: OutputEntry(
            digest=d,
            tree=["o", "array", d],
            objects=(d,),
            type_name="numpy.ndarray",
            dtype=a.dtype.str,
            shape=tuple(a.shape),
            nbytes=int(a.nbytes),
        )
        for name, (d, a) in arrays.items()
    }
    import time

    record = ActionRecord(
        key=key,
        stage=SHARD_STAGE,
        fingerprint=identity,
        outputs=outputs,
        created=time.time(),
        duration_s=duration_s,
        node_id=label,
    )
    store.put_action(record)


def get_shard(store: Any, key: str) -> dict[str, tuple[str, str, tuple[int, ...], int]] | None:
    """name -> (digest, dtype, shape, nbytes) of a recorded shard whose objects all exist."""
    record = store.get_action(key)
    if record is None or record.stage != SHARD_STAGE:
        return None
    if not all(store.has_object(e.digest) for e in record.outputs.values()):
        return None
    return {
        name: (e.digest, e.dtype or "", tuple(e.shape or ()), e.nbytes)
        for name, e in record.outputs.items()
    }


def touch_records(store: Any, keys: Iterable[str]) -> None:
    """Mark shard records as used now (gc evicts least-recently-used records first)."""
    for key in keys:
        store.actions.touch(key)


def object_bytes(store: Any, d: str) -> int:
    """Bytes on disk of object ``d`` (sum of its files), 0 for non-local stores."""
    import os

    if not store.is_local:
        return 0
    total = 0
    for root, _dirs, files in os.walk(store.object_path(d)):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


# -- plain files in the store (dataset cards) -----------------------------------------------------

_lock = threading.Lock()


def write_file(store: Any, rel: str, data: bytes) -> None:
    """Atomically write ``rel`` (relative to the store root)."""
    store.backend.makedirs("tmp")
    store.backend.write_atomic(rel, data)


def read_file(store: Any, rel: str) -> bytes:
    """Bytes of ``rel``; FileNotFoundError when absent."""
    return store.backend.read(rel)


def list_files(store: Any, rel: str) -> list[str]:
    return sorted(store.backend.listdir(rel))


def store_location(store: Any) -> str:
    return str(store.location)


# -- dask -----------------------------------------------------------------------------------------


def local_dask_client(workers: int | None) -> Any:
    """A ``distributed.Client`` on a new LocalCluster of processes (env kept clean)."""
    from distributed import Client, LocalCluster

    from ..executors.dask import start_local_cluster

    cluster = start_local_cluster(
        LocalCluster, n_workers=workers or 2, threads_per_worker=1, processes=True
    )
    return Client(cluster)
