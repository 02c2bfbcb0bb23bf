"""IQ as a stored value; SigMF and IQ01 files: bit-exact round trips and clear errors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import physflow as pf
from physflow.stages.rf import IQ, RecordingFormatError, iq01, make_boxes, sigmf

from . import rf_stages as S

samples_st = arrays(np.complex64, st.integers(1, 300))  # any bits: NaNs, infs, -0.0 included
fs_st = st.floats(1.0, 1e10, allow_nan=False)
fc_st = st.floats(-1e10, 1e10, allow_nan=False)
time_st = st.integers(0, 2**62)
LAST_ISO_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_iq_value_round_trips_through_the_store(store):
    p = pf.Pipeline("iq")
    p.add("make", S.make_iq, S.NoiseConfig(n=5000))  # 40 kB of samples: stored as an object
    p.add("power", S.iq_power, iq="make")
    res = p.run(store=store).raise_on_failure()
    back = res["make"]
    assert isinstance(back, IQ)
    assert (back.sample_rate_hz, back.center_freq_hz, back.start_time_us) == (1e6, 100e6, 123)
    again = S.make_iq.func(S.NoiseConfig(n=5000), rng=np.random.default_rng(0))
    assert back.samples.dtype == np.complex64 and back.samples.shape == (5000,)
    assert res.digest("make") == pf.digest(back)
    assert res["power"] == pytest.approx(2.0, rel=0.05)  # unit-variance I and Q
    assert not same_bits(back.samples, again.samples)  # the node's own seed, not seed 0
    rerun = p.run(store=store)
    assert rerun.misses == [] and sorted(rerun.hits) == ["make", "power"]
    assert same_bits(rerun["make"].samples, back.samples)


def test_iq_rejects_wrong_dtype_and_rate():
    with pytest.raises(RecordingFormatError, match="1-D complex64"):
        IQ(samples=np.zeros(4, np.complex128), sample_rate_hz=1.0)
    with pytest.raises(RecordingFormatError, match="sample_rate_hz"):
        IQ(samples=np.zeros(4, np.complex64), sample_rate_hz=0.0)


@FAST
@given(
    frames=st.lists(
        st.tuples(
            time_st, st.integers(0, 2**32 - 1), samples_st, st.floats(width=32, allow_nan=False)
        ),
        min_size=1,
        max_size=5,
    )
)
def test_iq01_frames_round_trip_bit_exact(tmp_path, frames):
    path = tmp_path / "rec.iq01"
    written = [
        iq01.Frame(timestamp_us=t, frame_idx=i, samples=s, reserved=r) for t, i, s, r in frames
    ]
    assert iq01.write_frames(path, written) == len(written)
    assert path.stat().st_size == sum(24 + 8 * f.samples.size for f in written)
    back = list(iq01.read_frames(path))
    assert len(back) == len(written)
    for a, b in zip(written, back):
        assert (a.timestamp_us, a.frame_idx, a.reserved) == (
            b.timestamp_us,
            b.frame_idx,
            b.reserved,
        )
        assert same_bits(a.samples, b.samples)
    rewritten = tmp_path / "again.iq01"
    iq01.write_frames(rewritten, back)
    assert rewritten.read_bytes() == path.read_bytes()


@FAST
@given(samples=samples_st, fs=fs_st, fc=fc_st, start=time_st, frame=st.integers(1, 400))
def test_iq01_recording_round_trip(tmp_path, samples, fs, fc, start, frame):
    iq = IQ(samples=samples, sample_rate_hz=fs, center_freq_hz=fc, start_time_us=start)
    path = tmp_path / "rec.iq01"
    n_frames = iq01.write_iq(path, iq, frame)
    assert n_frames == -(-samples.size // frame)
    back = iq01.read_iq(path, fs, fc)
    assert same_bits(back.samples, samples) and back.start_time_us == start
    headers = iq01.scan(path)
    assert [h.frame_idx for h in headers] == list(range(n_frames))


def _frame(n=4, magic=b"IQ01", ts=7, idx=0, count=None):
    body = np.arange(n, dtype=np.float32).astype(np.complex64).tobytes()
    return struct.pack("=4sQIIf", magic, ts, idx, n if count is None else count, 0.0) + body


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_frame(magic=b"IQ02"), r"frame 0 at byte 0: bad magic b'IQ02'.*not an IQ01 file"),
        (_frame() + _frame(magic=b"XXXX"), r"frame 1 at byte 56: bad magic .*num_samples"),
        (_frame() + _frame()[:10], r"truncated IQ01 header of frame 1 at byte 56: 10 of 24"),
        (
            _frame()[:-3],
            r"truncated frame 0 at byte 0: header says 4 samples \(32 bytes\) but "
            r"only 29 bytes remain",
        ),
        (_frame(count=0), r"frame 0 at byte 0: num_samples is 0"),
        (b"", r"empty file"),
    ],
    ids=["magic", "magic-later", "short-header", "short-payload", "zero", "empty"],
)
def test_iq01_errors_name_file_frame_and_offset(tmp_path, data, expected):
    path = tmp_path / "bad.iq01"
    path.write_bytes(data)
    with pytest.raises(RecordingFormatError, match=expected) as err:
        list(iq01.read_frames(path))
    assert "bad.iq01" in str(err.value)


def test_iq01_wrong_frame_size(tmp_path):
    path = tmp_path / "r.iq01"
    path.write_bytes(_frame(4) + _frame(5, idx=1))
    with pytest.raises(
        RecordingFormatError,
        match=r"frame 1 at byte 56 has 5 samples, "
        r"expected 4 \(wrong frame size\)",
    ):
        iq01.scan(path, expected_samples=4)
    assert len(iq01.scan(path)) == 2  # sizes may differ when no size is expected


@FAST
@given(samples=samples_st, fs=fs_st, fc=fc_st, start=st.integers(0, LAST_ISO_US))
def test_sigmf_round_trip_bit_exact(tmp_path, samples, fs, fc, start):
    iq = IQ(samples=samples, sample_rate_hz=fs, center_freq_hz=fc, start_time_us=start)
    meta_path, data_path = sigmf.write(tmp_path / "rec", iq)
    assert data_path.read_bytes() == samples.astype("<c8").tobytes()
    meta = json.loads(meta_path.read_text())  # plain JSON with the SigMF core fields
    assert meta["global"]["core:datatype"] == "cf32_le"
    for mmap in (False, True):
        back = sigmf.read(tmp_path / "rec.sigmf-data", mmap=mmap)
        assert same_bits(np.asarray(back.samples), samples)
        assert (back.sample_rate_hz, back.center_freq_hz, back.start_time_us) == (fs, fc, start)


def test_sigmf_start_time_beyond_iso_dates_is_an_error(tmp_path):
    iq = IQ(samples=np.zeros(4, np.complex64), sample_rate_hz=1.0, start_time_us=LAST_ISO_US + 1)
    with pytest.raises(RecordingFormatError, match=r"core:datetime can hold \(years 1-9999\)"):
        sigmf.write(tmp_path / "late", iq)


def test_sigmf_annotations_carry_boxes(tmp_path):
    fs = 1e6
    iq = IQ(samples=np.zeros(10_000, np.complex64), sample_rate_hz=fs, center_freq_hz=915e6)
    truth = make_boxes(
        [(0.001, 0.002, -1e5, 2e5), (0.005, 0.009, 3e5, 3.5e5)],
        [0, 1],
        ["qpsk", "chirp"],
        [20.0, 15.0],
    )
    sigmf.write(tmp_path / "a", iq, annotations=truth)
    back = sigmf.read_annotations(tmp_path / "a", frame_samples=5000)
    np.testing.assert_allclose(back.box, truth.box, rtol=0, atol=1e-6)
    assert back.label_names() == ["qpsk", "chirp"] and list(back.frame) == [0, 1]


def _meta(tmp_path, meta: dict | str, data: bytes = b"\0" * 16):
    (tmp_path / "x.sigmf-meta").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    (tmp_path / "x.sigmf-data").write_bytes(data)
    return tmp_path / "x"


GOOD = {"global": {"core:datatype": "cf32_le", "core:sample_rate": 1e6}, "captures": [{}]}


@pytest.mark.parametrize(
    ("meta", "data", "expected"),
    [
        ("{not json", b"", r"x.sigmf-meta:1:2: invalid JSON"),
        ({"captures": []}, b"", r"missing field global"),
        ({"global": {"core:sample_rate": 1e6}}, b"", r"missing field global.core:datatype"),
        (
            {"global": {"core:datatype": "ci16_le", "core:sample_rate": 1e6}},
            b"",
            r"core:datatype 'ci16_le' is not supported.*'cf32_le'",
        ),
        (
            {"global": {"core:datatype": "cf32_le", "core:sample_rate": "fast"}},
            b"",
            r"global.core:sample_rate = 'fast' has the wrong type",
        ),
        (GOOD, b"\0" * 13, r"x.sigmf-data: 13 bytes is not a whole number of cf32_le samples"),
        (
            {**GOOD, "captures": [{"core:datetime": "yesterday"}]},
            b"",
            r"core:datetime 'yesterday' is not an ISO 8601 time",
        ),
    ],
    ids=["json", "no-global", "no-datatype", "datatype", "rate-type", "size", "datetime"],
)
def test_sigmf_errors_name_file_and_field(tmp_path, meta, data, expected):
    base = _meta(tmp_path, meta, data)
    with pytest.raises(RecordingFormatError, match=expected):
        sigmf.read(base)


def test_sigmf_missing_files(tmp_path):
    with pytest.raises(RecordingFormatError, match="no such SigMF meta file"):
        sigmf.read(tmp_path / "nothing")
    (tmp_path / "m.sigmf-meta").write_text(json.dumps(GOOD))
    with pytest.raises(RecordingFormatError, match="no such SigMF data file"):
        sigmf.read(tmp_path / "m")
