"""Worker processes for the shared-store tests (``python -m tests.artifacts.remote.remote_worker``).

``overlap SPEC ID GO``: wait for the file GO, run :func:`shared_pipeline` (nodes overlap with
the other workers': same configs -> same keys) and print the output digests and means as JSON.
``churn SPEC KILL_AT``: run pipelines forever and SIGKILL itself at the KILL_AT-th write
operation (a staged file, a PUT to the server, a delete), so the crash lands inside a write.
``claim SPEC KEY LOG TTL [die]``: run ``Claims.run_once`` on KEY, appending to LOG when it
computes; with ``die`` the process SIGKILLs itself while holding the claim.
SPEC is a JSON object: {"url", "options", "cache_dir"}.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time

import numpy as np

import physflow as pf
from tests.artifacts import store_stages as S


def open_store(spec: str) -> pf.Store:
    conf = json.loads(spec)
    url = conf["url"]
    options = conf["options"] or None
    return pf.Store(url, storage_options=options, cache_dir=conf["cache_dir"] or None)


def shared_pipeline(worker: int, mib: int = 1) -> pf.Pipeline:
    """Worker w computes seeds w..w+3 (shared with its neighbours) and one streamed field."""
    p = pf.Pipeline(f"shared{worker}")
    for k in range(4):
        seed = worker + k
        p.add(f"big{seed}", S.big_random, S.BigConfig(seed=seed, mib=mib))
        p.add(f"mean{seed}", S.mean_of, x=f"big{seed}")
    p.add("field", S.stream_field, S.FieldConfig(rows=128, cols=256, chunk_rows=32))
    p.add("sums", S.block_sums, field="field.field")
    return p


def expected_mean(seed: int, mib: int = 1) -> float:
    """The mean of big_random's output, computed independently of physflow."""
    return float(np.mean(np.random.default_rng(seed).standard_normal(mib * (1 << 20) // 8)))


def overlap(spec: str, worker: int, go: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("start signal never came")
        time.sleep(0.002)
    res = shared_pipeline(worker).run(store=open_store(spec))
    res.raise_on_failure()
    digests = {node: res.digest(node) for node in res.outcome.states}
    means = {n: res[n] for n in digests if n.startswith("mean")}
    print(json.dumps({"digests": digests, "means": means}))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_point(kill_at: int) -> None:
    """SIGKILL this process at the ``kill_at``-th write operation (staged or remote)."""
    from physflow.artifacts import backend, remote_client

    counter = itertools.count(1)
    sink_write = backend.LocalSink.write
    sink_hashed = backend.LocalSink.write_hashed
    put, delete = remote_client.ObjectClient.put, remote_client.ObjectClient.delete

    def write(self, rel, data):
        if next(counter) == kill_at:  # a half-written staged file
            with open(self.path(rel), "wb") as fh:
                fh.write(memoryview(data).cast("B")[: len(memoryview(data).cast("B")) // 2])
            _die()
        return sink_write(self, rel, data)

    def write_hashed(self, rel, data, hashers):
        if next(counter) == kill_at:
            _die()
        return sink_hashed(self, rel, data, hashers)

    def put_then_maybe_die(self, path, data, **kw):
        n = next(counter)
        if n == kill_at and n % 2:  # before this PUT ...
            _die()
        result = put(self, path, data, **kw)
        if n == kill_at:  # ... or right after it
            _die()
        return result

    def delete_then_maybe_die(self, paths):
        if next(counter) == kill_at:
            _die()
        return delete(self, paths)

    backend.LocalSink.write = write
    backend.LocalSink.write_hashed = write_hashed
    remote_client.ObjectClient.put = put_then_maybe_die
    remote_client.ObjectClient.delete = delete_then_maybe_die


def churn_pipeline(i: int) -> pf.Pipeline:
    p = pf.Pipeline(f"churn{i % 3}")
    p.add("big", S.big_random, S.BigConfig(seed=1000 + i, mib=1))
    p.add("mean", S.mean_of, x="big")
    p.add("field", S.stream_field, S.FieldConfig(rows=64 + i, cols=128, chunk_rows=16))
    return p


def churn(spec: str, kill_at: int) -> None:
    store = open_store(spec)
    install_kill_point(kill_at)
    for i in itertools.count():
        churn_pipeline(i).run(store=store).raise_on_failure()


def claim(spec: str, key: str, log: str, ttl: float, die: bool) -> None:
    from physflow.artifacts.claims import Claims

    store = open_store(spec)
    claims = Claims(store)

    def lookup():
        record = store.get_action(key)
        return None if record is None else record.outputs["value"].tree

    def compute():
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {time.time()}\n")
        if die:
            _die()  # holding the claim: it must expire before anyone else computes
        time.sleep(0.3)  # long enough for the others to find the claim held
        entry = store.put_value(42)
        store.put_action(_record(key, entry))
        return entry.tree

    value, computed = claims.run_once(key, lookup, compute, ttl=ttl, poll=0.02)
    print(json.dumps({"value": value, "computed": computed}))


def _record(key: str, entry):
    from physflow.core.records import ActionRecord

    return ActionRecord(key=key, stage="t", fingerprint="f", outputs={"value": entry}, created=0)


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "overlap":
        overlap(rest[0], int(rest[1]), rest[2])
    elif mode == "churn":
        churn(rest[0], int(rest[1]))
    elif mode == "claim":
        claim(rest[0], rest[1], rest[2], float(rest[3]), die=rest[4:] == ["die"])
    else:
        raise SystemExit(f"unknown mode {mode}")
