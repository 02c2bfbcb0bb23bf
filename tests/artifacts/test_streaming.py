"""Chunked outputs streamed through ``ctx.output_array`` and lazy inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import physflow as pf

from . import store_stages as S


def _field(rows, cols):
    return S.field_block((slice(0, rows), slice(0, cols)), cols)


@pytest.mark.parametrize(
    "cfg",
    [
        S.FieldConfig(rows=103, cols=40, chunk_rows=10),  # slabs, in order, ragged last chunk
        S.FieldConfig(rows=103, cols=40, chunk_rows=10, reverse=True),  # out of order
        S.FieldConfig(rows=64, cols=50, chunk_rows=16, chunk_cols=7),  # 2-D grid, ragged cols
        S.FieldConfig(rows=64, cols=50, chunk_rows=64, chunk_cols=50),  # one chunk
    ],
    ids=["slabs", "reversed", "grid", "single"],
)
def test_streamed_digest_equals_in_memory_digest(store, calls, cfg):
    p = pf.Pipeline("stream")
    p.add("f", S.stream_field, cfg)
    res = p.run(store=store)
    assert res.ok, res.errors
    full = _field(cfg.rows, cfg.cols)
    assert res.digest("f.field") == pf.digest(full) == store.put_value(full).digest
    back = res["f.field"]
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, full)
    assert res["f.rows"] == cfg.rows
    assert p.run(store=store).hits == ["f"] and calls["stream_field"] == 1
    # a valid zarr v3 array with the requested chunking
    import zarr

    z = zarr.open_array(str(store.object_path(res.digest("f.field"))), mode="r")
    assert z.chunks == (cfg.chunk_rows, cfg.chunk_cols or cfg.cols)
    np.testing.assert_array_equal(z[:], full)


def test_streamed_compressed_output(tmp_path):
    store = pf.Store(tmp_path / "s", compress=True)
    cfg = S.FieldConfig(rows=200, cols=30, chunk_rows=32)
    p = pf.Pipeline("stream")
    p.add("f", S.stream_field, cfg)
    res = p.run(store=store)
    d = res.digest("f.field")
    assert d == pf.digest(_field(200, 30))
    meta = json.loads((store.object_path(d) / "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "zstd"]
    np.testing.assert_array_equal(res["f.field"], _field(200, 30))


def test_lazy_input_is_dask_and_verified(store, calls):
    cfg = S.FieldConfig(rows=100, cols=20, chunk_rows=25)
    p = pf.Pipeline("lazy")
    p.add("f", S.stream_field, cfg)
    p.add("sums", S.block_sums, field="f.field")
    res = p.run(store=store)
    assert res.ok, res.errors
    full = _field(100, 20)
    expected = [float(full[i * 25 : (i + 1) * 25].sum(dtype=np.float64)) for i in range(4)]
    np.testing.assert_allclose(res["sums"], expected)


def test_incomplete_stream_is_an_error_naming_stage_and_output(store):
    p = pf.Pipeline("p")
    p.add("half", S.stream_incomplete)
    res = p.run(store=store)
    err = res.errors["half"]
    assert "stream_incomplete" in err and "output 'field'" in err
    assert "1 of 2 chunks were never written" in err and "(1, 0)" in err
    assert list(store.tmp_dir.iterdir()) == []
    assert not any(store.objects_dir.rglob("zarr.json"))


def test_failing_stage_leaves_no_partial_output(store):
    p = pf.Pipeline("p")
    p.add("boom", S.stream_then_fail)
    res = p.run(store=store)
    assert "simulated failure" in res.errors["boom"]
    assert list(store.tmp_dir.iterdir()) == []
    assert not any(store.objects_dir.rglob("*"))


def test_writer_rejects_misaligned_and_repeated_writes(store):
    ctx = pf.StageContext(store)
    out = ctx.output_array("x", (10, 4), "f8", chunks=(5, 4))
    with pytest.raises(IndexError, match="exactly one chunk"):
        out[0:3] = np.zeros((3, 4))
    out[0:5] = np.ones((5, 4))
    with pytest.raises(ValueError, match="already written"):
        out.write_chunk((0, 0), np.ones((5, 4)))
    with pytest.raises(ValueError, match="must have shape"):
        out.write_chunk((1, 0), np.ones((4, 4)))
    out[5:10] = np.full((5, 4), 2.0)
    entry = out.close()
    expected = np.concatenate([np.ones((5, 4)), np.full((5, 4), 2.0)])
    assert entry.digest == pf.digest(expected)
    np.testing.assert_array_equal(store.get_value(entry), expected)


def test_streaming_memory_stays_near_one_chunk(tmp_path):
    """A 256 MiB array streamed in 8 MiB chunks raises peak RSS by far less than its size."""
    code = textwrap.dedent(
        f"""
        import numpy as np
        import physflow as pf

        def status(field):  # per address space (ru_maxrss would be inherited from pytest)
            with open("/proc/self/status") as fh:
                return next(int(x.split()[1]) for x in fh if x.startswith(field + ":"))

        store = pf.Store({str(tmp_path / "s")!r})
        ctx = pf.StageContext(store)
        rows, cols = 8192, 8192  # float32: 256 MiB; chunks of 256 rows: 8 MiB
        base = status("VmRSS")
        out = ctx.output_array("x", (rows, cols), "f4", chunks=(256, cols))
        for i in range(out.grid[0]):
            out.write_chunk((i, 0), np.full((256, cols), i, dtype=np.float32))
        entry = out.close()
        grown = (status("VmHWM") - base) / 1024
        expected = np.repeat(np.arange(32, dtype=np.float32), 256)[:, None] * np.ones(
            (1, cols), dtype=np.float32)
        assert entry.digest == pf.digest(expected)
        print(grown)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}, check=True
    )
    grown_mib = float(done.stdout.strip().splitlines()[-1])
    assert grown_mib < 100, f"peak RSS grew by {grown_mib:.0f} MiB for a 256 MiB array"
