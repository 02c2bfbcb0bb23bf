"""The object-store protocol against a real S3-API server: create-only writes really sent,
the s3fs #973 trap detected, lost races settled by digest, recent-plan lists by ETag CAS."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import physflow as pf
from physflow.artifacts.remote import (
    ConditionalWritesWarning,
    ObjectStoreBackend,
    PublishConflictError,
)
from physflow.artifacts.remote_client import ObjectClient
from physflow.core.records import ActionRecord, OutputEntry, decode_record, encode_record

from .. import store_stages as S


def test_pipeline_on_s3_hits_verifies_and_stays_zarr(bucket, calls):
    store = bucket.store()
    assert store.backend.conditional, "the server enforces If-None-Match"
    p = pf.Pipeline("p")
    p.add("a", S.ramp, S.RampConfig(n=60_000))
    p.add("b", S.square, x="a")
    p.add("f", S.stream_field, S.FieldConfig(rows=64, cols=16, chunk_rows=16, reverse=True))
    p.add("s", S.block_sums, field="f.field")
    res = p.run(store=store)
    assert res.ok, res.errors
    np.testing.assert_array_equal(res["b"], np.arange(60_000.0) ** 2)
    again = p.run(store=bucket.store())  # another Store object (another process, in effect)
    assert sorted(again.hits) == ["a", "b", "f", "s"] and calls["ramp"] == 1
    report = bucket.store().verify()
    assert report.ok and report.objects_checked == 3 and report.records_checked == 4
    # objects are zarr v3 on the server: open one with zarr through s3fs
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("s3fs")
    rel = store.object_rel(res.digest("b"))
    arr = zarr.open_array(
        f"s3://{bucket.name}/store/{rel}",
        mode="r",
        storage_options={**bucket.options},
    )
    np.testing.assert_array_equal(arr[:], res["b"])


@pytest.mark.parametrize("client", ["obstore", "s3fs"])
def test_create_only_is_enforced_by_the_server(bucket, client):
    """Both clients physflow can use really send If-None-Match: the second create is refused
    by the server and the first bytes stay."""
    if client == "s3fs":
        pytest.importorskip("s3fs")
    options = {**bucket.options, "physflow_client": "fsspec"} if client == "s3fs" else None
    store = pf.Store(bucket.url(), storage_options=options or dict(bucket.options))
    backend = store.backend
    assert backend.conditional
    assert backend.create("claims/x/1", b"first") is True
    assert backend.create("claims/x/1", b"second") is False
    assert bucket.get("store/claims/x/1") == b"first"


class _DropsConditions(ObjectClient):
    """A client with the s3fs #973 bug: create-only and If-Match silently become overwrites
    (s3fs < 2025.7 uploaded small files in one PUT without the header)."""

    def put(self, path, data, *, create=False, if_match=None, multipart=False):
        return super().put(path, data)


def test_s3fs_973_trap_is_detected_not_trusted(bucket):
    """A client that degrades create-only into overwrite is caught by the probe (against the
    real server): the store says so, stops relying on it, and claims stop excluding."""
    from physflow.artifacts.claims import Claims

    client = _DropsConditions(bucket.url(), bucket.options)
    with pytest.warns(ConditionalWritesWarning, match="does not enforce conditional writes"):
        backend = ObjectStoreBackend(bucket.url(), bucket.options, client=client)
    assert backend.conditional is False
    # check-then-write instead of trusting the header: an existing key is still not replaced
    assert backend.create("actions/ab/k", b"one") is True
    assert backend.create("actions/ab/k", b"two") is False
    assert bucket.get("store/actions/ab/k") == b"one"
    claims = Claims(backend)
    assert claims.exclusive is False
    first, second = claims.try_claim("b3:" + "ab" * 32), claims.try_claim("b3:" + "ab" * 32)
    assert first is not None and second is not None  # nobody is excluded: everyone computes
    # a faithful client on the same server passes the probe
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConditionalWritesWarning)
        good = ObjectStoreBackend(
            bucket.url(), bucket.options, client=ObjectClient(bucket.url(), bucket.options)
        )
    assert good.conditional is True


def _record(key: str, created: float, value: int) -> ActionRecord:
    out = OutputEntry(digest=pf.digest(value), tree=["i", value])
    return ActionRecord(
        key=key, stage="s", fingerprint="f", outputs={"value": out}, created=created
    )


def test_records_first_writer_wins_and_damage_is_replaced(bucket):
    key = "b3:" + "cd" * 32
    rel = f"store/actions/cd/{'cd' * 32}"
    a, b = bucket.store(), bucket.store()
    a.put_action(_record(key, 1.0, 7))
    b.put_action(_record(key, 2.0, 7))  # lost race with an equivalent record: success
    assert decode_record(bucket.get(rel)).created == 1.0
    bucket.flip(rel, at=5)  # damaged on the server: a miss, and the next writer replaces it
    assert a.get_action(key) is None
    b.put_action(_record(key, 3.0, 7))
    assert a.get_action(key).created == 3.0
    assert bucket.get(rel) == encode_record(_record(key, 3.0, 7))


def test_concurrent_publication_of_one_object(bucket):
    """Eight threads store the same array at once: one object, every chunk intact."""
    value = np.arange(300_000, dtype=np.float64)
    stores = [bucket.store() for _ in range(8)]
    barrier = threading.Barrier(8)
    digests, errors = [], []

    def put(store):
        barrier.wait()
        try:
            digests.append(store.put_value(value).digest)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(digests) == {pf.digest(value)}
    assert bucket.store().verify().ok
    objects = {k.split("/")[3] for k in bucket.keys("store/objects/")}
    assert len(objects) == 1


def test_lost_race_with_other_bytes_is_a_verified_error(bucket):
    """An unpublished leftover with other bytes at an object's key is never overwritten; once
    another writer's marker exists, the object is simply there."""
    store = bucket.store()
    value = np.arange(50_000, dtype=np.int64)
    rel = store.object_rel(pf.digest(value))
    bucket.put(f"store/{rel}/c/0", b"not the chunk")  # a crashed writer's other chunking
    with pytest.raises(PublishConflictError, match="other bytes"):
        store.put_value(value)
    assert bucket.get(f"store/{rel}/c/0") == b"not the chunk"
    assert not store.has_object(pf.digest(value))
    # the leftover removed (as gc does), the value publishes and reads back
    bucket.raw.delete_object(Bucket=bucket.name, Key=f"store/{rel}/c/0")
    entry = store.put_value(value)
    np.testing.assert_array_equal(bucket.store().get_value(entry), value)


def test_recent_plan_lists_use_compare_and_swap(bucket):
    store = bucket.store()
    records = store.records
    rel = "plans/latest/" + "0" * 32
    assert store.backend.replace(rel, b"a", None) is True
    _data, tag = store.backend.read_tagged(rel)
    assert store.backend.replace(rel, b"b", tag) is True
    assert store.backend.replace(rel, b"c", tag) is False  # stale tag: refused
    assert bucket.get(f"store/{rel}") == b"b"
    # concurrent updates of one name's list lose nothing (CAS retries)
    keys = [f"{i:064x}" for i in range(12)]
    threads = [
        threading.Thread(target=bucket.store().records.mark_recent, args=("sweep", k)) for k in keys
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(records.recent("sweep")) == sorted(keys)
