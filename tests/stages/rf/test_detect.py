"""configs/rf_detect.yaml as users run it: detection quality against truth, cache behaviour,
latency percentiles in the manifest, budgets reported and not failed, bad values rejected."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.stages.rf import IQ, LABELS, BurstSpec, SynthConfig, ToneSpec, synth

from .conftest import DETECT

pytest.importorskip("scipy.ndimage")
pytest.importorskip("dask.array")
NODES = ["cfar", "latency", "normalize", "score", "stft", "synth"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    store = pf.Store(tmp_path_factory.mktemp("rf") / "store")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a loaded machine may exceed a budget: reported only
        res = pf.load_spec(DETECT).run(store=store).raise_on_failure()
    return store, res


def test_default_config_detects_bursts(first_run):
    """Bursts at in-band SNR 15-25 dB: recall >= 0.95 with IoU >= 0.5 per match."""
    _, res = first_run
    assert sorted(res.misses) == NODES
    truth = res["synth.truth"]
    labels = [LABELS[i] for i in truth.label]
    assert labels.count("tone") == 8 and labels.count("qpsk") + labels.count("chirp") == 20
    assert res["score.burst_recall"] >= 0.95
    assert res["score.burst_mean_iou"] >= 0.5 and res["score.mean_iou"] >= 0.5
    assert res["score.recall"] >= 0.95 and res["score.precision"] >= 0.9
    det = res["cfar.detections"]
    assert len(det) == res["score.n_detections"] and det.box.shape == (len(det), 4)


def test_rerun_executes_nothing_and_budget_edit_reruns_only_latency(first_run):
    store, first = first_run
    again = pf.load_spec(DETECT).run(store=store)
    assert again.misses == [] and sorted(again.hits) == NODES
    assert again.digest("cfar.detections") == first.digest("cfar.detections")
    edited = pf.load_spec(DETECT, overrides={"latency.budgets_ms": {"cfar": 1e9}})
    res = edited.run(store=store)
    assert res.misses == ["latency"]
    assert res["latency.over_budget"] == 0


def test_latency_percentiles_are_in_the_manifest(first_run):
    _, res = first_run
    manifest = json.loads(Path(res.manifest_path).read_text())
    nodes = {n["id"]: n for n in manifest["nodes"]}
    for node in ("stft", "normalize", "cfar"):
        m = nodes[node]["metrics"]
        assert m["latency.n_frames"] == 4
        assert 0 < m["latency.p50_ms"] <= m["latency.p95_ms"] <= m["latency.p99_ms"]
        assert m["latency.p99_ms"] <= m["latency.max_ms"]
    report = nodes["latency"]["metrics"]
    assert report["report.cfar.p99_ms"] == nodes["cfar"]["metrics"]["latency.p99_ms"]
    assert report["report.stft.budget_ms"] == 200.0
    assert {"report.stft.over", "report.normalize.over", "report.cfar.over"} <= set(report)
    loaded = pf.load_manifest(res.manifest_path)
    assert loaded.open("stft.latency")["n_frames"] == 4


def test_over_budget_is_reported_not_failed(first_run):
    store, _ = first_run
    p = pf.load_spec(DETECT, overrides={"latency.budgets_ms": {"stft": 0.0, "cfar": 0.0}})
    with pytest.warns(UserWarning, match="over budget: stft p99 .* > 0 ms; cfar p99"):
        res = p.run(store=store)
    assert res.ok and res.misses == ["latency"]
    assert res["latency.over_budget"] == 2
    assert res["latency.report"]["stft.over"] == 1.0
    assert "normalize.over" not in res["latency.report"]  # no budget: listed, not judged


def test_stated_snr_level(tmp_path):
    """The level docs/rf.md states: every burst at exactly 15 dB in-band SNR, 30 bursts."""
    p = pf.load_spec(
        DETECT,
        overrides={
            "synth.bursts.snr_db": [15.0, 15.0],
            "synth.n_frames": 6,
            "latency.budgets_ms": {},
        },
    )
    res = p.run(store=tmp_path / "store").raise_on_failure()
    assert res["score.burst_recall"] >= 0.95 and res["score.burst_mean_iou"] >= 0.5
    weak = p.with_values({"synth.bursts.snr_db": [0.0, 0.0]}).run(store=tmp_path / "store")
    assert weak["score.burst_recall"] < 0.5  # the same chain cannot see 0 dB bursts
    assert "synth" in weak.misses and "stft" in weak.misses


def test_synth_bursts_have_their_stated_power():
    """Measured mean |x|^2 inside each burst (ramps excluded) minus the noise variance equals
    SNR * N0 * B, within the sampling spread of the noise (one burst per frame, so bursts in
    other bands do not add to the measurement)."""
    cfg = SynthConfig(n_frames=8, tones=(), bursts=BurstSpec(per_frame=1))
    out = synth.func(cfg, rng=np.random.default_rng(4))
    iq, truth = out["iq"], out["truth"]
    assert isinstance(iq, IQ) and iq.samples.dtype == np.complex64
    fs, n0 = cfg.sample_rate_hz, 10 ** (cfg.n0_db_hz / 10)
    sigma2 = n0 * fs
    quiet = np.ones(iq.samples.size, bool)
    for (t0, t1, f0, f1), snr in zip(truth.box, truth.score):
        lo, hi = round(t0 * fs), round(t1 * fs)
        quiet[lo:hi] = False
        ramp = round(cfg.bursts.ramp_s * fs)
        body = iq.samples[lo + ramp : hi - ramp]
        expected = 10 ** (snr / 10) * n0 * (f1 - f0)
        # noise power and signal-noise cross term: 5 sigma of their sample means; the QPSK
        # envelope itself varies, which the 5% allows for
        spread = 5 * sigma2 / np.sqrt(body.size) + 5 * np.sqrt(2 * expected * sigma2 / body.size)
        measured = np.mean(np.abs(body.astype(np.complex128)) ** 2) - sigma2
        assert abs(measured - expected) < spread + 0.05 * expected, (measured, expected)
    assert np.mean(np.abs(iq.samples[quiet]) ** 2) == pytest.approx(sigma2, rel=0.01)


def test_synth_refuses_impossible_placement_and_bad_tones():
    with pytest.raises(ValueError, match="cannot place 300 bursts"):
        synth.func(
            SynthConfig(n_frames=1, bursts=BurstSpec(per_frame=300)), rng=np.random.default_rng(0)
        )
    with pytest.raises(ValueError, match="outside the baseband"):
        SynthConfig(tones=(ToneSpec(freq_hz=11e6, snr_db=0.0),))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("mode: both", "mode: diagonal", r"'cfar'.*mode.*'time'.*'freq'.*'both'"),
        ("range_db: 80.0", "range_db: -3.0", r"'normalize'.*range_db"),
        ("budgets_ms: {stft: 200.0", "budgets_ms: {fft: 200.0", r"'latency'.*unknown stage"),
        ("kinds: [qpsk, chirp]", "kinds: [qpsk, fm]", r"'synth'.*kinds"),
    ],
)
def test_bad_values_are_rejected_with_file_and_line(tmp_path, old, new, expected):
    text = DETECT.read_text()
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new))
    with pytest.raises(pf.SpecError, match=expected) as err:
        pf.load_spec(bad)
    assert "bad.yaml:" in str(err.value)
