"""Worker processes for the store concurrency and crash tests (run with ``python -m``).

``overlap STORE ID GO``: wait until the file GO exists, then run a pipeline whose nodes overlap
with the other workers' (same configs -> same keys), and print the output digests as JSON.
``churn STORE KILL_AT``: write pipelines forever; at the KILL_AT-th write operation (a chunk or
metadata file half written, a directory rename, a record or manifest replace) the process sends
itself SIGKILL, so the crash lands exactly inside a write.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time

import physflow as pf

from . import store_stages as S


def overlap_pipeline(worker: int) -> pf.Pipeline:
    p = pf.Pipeline(f"overlap{worker}")
    for k in range(6):  # seeds shared by neighbours: worker w uses w..w+5
        seed = worker + k
        p.add(f"big{seed}", S.big_random, S.BigConfig(seed=seed, mib=2))
        p.add(f"mean{seed}", S.mean_of, x=f"big{seed}")
    p.add("field", S.stream_field, S.FieldConfig(rows=256, cols=512, chunk_rows=32))
    p.add("sums", S.block_sums, field="field.field")
    return p


def overlap(store_path: str, worker: int, go: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("start signal never came")
        time.sleep(0.001)
    res = overlap_pipeline(worker).run(store=pf.Store(store_path))
    res.raise_on_failure()
    digests = {node: res.digest(node) for node in res.outcome.states}
    print(json.dumps({"digests": digests, "means": {n: res[n] for n in digests if "mean" in n}}))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_point(kill_at: int) -> None:
    """SIGKILL this process at the ``kill_at``-th write operation of the store."""
    from physflow.artifacts import arrays, backend

    counter = itertools.count(1)
    sink_write = backend.LocalSink.write
    write_dir = arrays.write_array_dir
    real_rename, real_replace = os.rename, os.replace

    def write(self, rel, data):
        if next(counter) == kill_at:  # leave a half-written file behind
            view = memoryview(data).cast("B")
            os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
            with open(self.path(rel), "wb") as fh:
                fh.write(view[: len(view) // 2])
            _die()
        return sink_write(self, rel, data)

    def write_array_dir(target, array, digest=None, data_hash=None):
        if next(counter) == kill_at:
            _die()
        result = write_dir(target, array, digest, data_hash)
        if next(counter) == kill_at:
            _die()
        return result

    def rename(src, dst, **kw):
        if next(counter) == kill_at:
            _die()
        return real_rename(src, dst, **kw)

    def replace(src, dst, **kw):
        if next(counter) == kill_at:
            _die()
        return real_replace(src, dst, **kw)

    backend.LocalSink.write = write
    arrays.write_array_dir = write_array_dir
    os.rename, os.replace = rename, replace


def churn(store_path: str, kill_at: int) -> None:
    store = pf.Store(store_path)
    install_kill_point(kill_at)
    i = 0
    while True:
        p = pf.Pipeline(f"churn{i}")
        p.add("big", S.big_random, S.BigConfig(seed=1000 + i, mib=3))
        p.add("mean", S.mean_of, x="big")
        p.add(
            "field",
            S.stream_field,
            S.FieldConfig(rows=128 + i, cols=1024, chunk_rows=16, reverse=bool(i % 2)),
        )
        p.run(store=store)
        store.put_value({"blob": os.urandom(100_000), "i": i}, compress=bool(i % 2))
        i += 1


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "overlap":
        overlap(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "churn":
        churn(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode}")
