"""``ctx.memo``: pieces of a stage's work cached on their own, keyed by code and arguments."""

from __future__ import annotations

import numpy as np
import pytest

import physflow as pf

from . import store_stages as S


def _run(store, n, chunk=100):
    p = pf.Pipeline("memo")
    p.add("s", S.memo_cumsum, S.ChunkSumConfig(n=n, chunk=chunk))
    res = p.run(store=store)
    assert res.ok, res.errors
    return res


def test_appending_recomputes_only_new_chunks(store, calls):
    res = _run(store, 1000)
    np.testing.assert_array_equal(res["s"], np.cumsum(np.arange(1000.0)))
    assert calls["chunk_cumsum"] == 10 and calls["memo:0/10"] == 1
    res = _run(store, 1250)  # a longer recording with the same prefix: a new key for the node
    assert res.misses == ["s"]
    np.testing.assert_array_equal(res["s"], np.cumsum(np.arange(1250.0)))
    assert calls["chunk_cumsum"] == 13 and calls["memo:10/3"] == 1


def test_changed_argument_or_chunking_misses(store, calls):
    _run(store, 1000)
    _run(store, 1000, chunk=125)  # other chunk boundaries: other arguments, all recomputed
    assert calls["chunk_cumsum"] == 10 + 8


def test_damaged_memo_object_is_recomputed_not_served(store, calls):
    res = _run(store, 3000, chunk=3000)  # one chunk, stored as an object (> inline limit)
    record = store.get_action(S.memo_key_for_test(3000))
    assert record is not None and record.object_digests
    (d,) = record.object_digests
    chunk_file = next(
        p for p in store.object_path(d).rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    chunk_file.write_bytes(b"\0" * chunk_file.stat().st_size)
    # another config whose one chunk has the same function and arguments: same memo key
    res2 = _run(store, 3000, chunk=5000)
    assert res2.misses == ["s"] and calls["chunk_cumsum"] == 2
    np.testing.assert_array_equal(res2["s"], np.cumsum(np.arange(3000.0)))
    np.testing.assert_array_equal(res2["s"], res["s"])
    assert _run(store, 3000, chunk=6000).ok and calls["chunk_cumsum"] == 2  # healed: a hit


def test_nested_functions_are_refused(store):
    ctx = pf.StageContext(store)
    with pytest.raises(TypeError, match="module-level"):
        ctx.memo(lambda x: x, 1)
