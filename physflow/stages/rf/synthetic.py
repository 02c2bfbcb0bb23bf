"""``rf.synth``: a synthetic SDR capture with known truth (tones, QPSK and chirp bursts, AWGN
at a known noise density N0)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_interval, check_range
from . import signals
from .boxes import Boxes, make_boxes
from .iq import IQ

BurstKind = Literal["qpsk", "chirp"]


class ToneSpec(pf.Config):
    freq_hz: float
    #: Per-sample SNR A^2 / sigma^2; a bin-centred tone's per-bin SNR is this + 10 log10(2N/3).
    snr_db: float


class BurstSpec(pf.Config):
    per_frame: Annotated[int, msgspec.Meta(ge=0)] = 5
    kinds: tuple[BurstKind, ...] = ("qpsk", "chirp")
    #: In-band SNR P / (N0 B), drawn uniformly in dB.
    snr_db: tuple[float, float] = (15.0, 25.0)
    duration_s: tuple[float, float] = (0.5e-3, 2.0e-3)
    bandwidth_hz: tuple[float, float] = (0.2e6, 2.0e6)
    #: Bursts lie inside this baseband range.
    band_hz: tuple[float, float] = (-8.0e6, 8.0e6)
    rolloff: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.35
    ramp_s: Annotated[float, msgspec.Meta(ge=0.0)] = 20e-6
    #: Bursts whose bands come within ``clearance_hz`` are at least this far apart in time
    #: (a burst inside another's CFAR training window would raise its threshold: masking).
    min_gap_s: Annotated[float, msgspec.Meta(ge=0.0)] = 5e-3
    clearance_hz: Annotated[float, msgspec.Meta(ge=0.0)] = 200e3
    #: No burst starts or ends closer than this to a frame edge.
    edge_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.5e-3

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if kind not in ("qpsk", "chirp"):
                raise ValueError(f"BurstSpec.kinds: {kind!r} is not valid; use 'qpsk' or 'chirp'")
        for name in ("snr_db", "band_hz"):
            check_interval(self, name)
        for name in ("duration_s", "bandwidth_hz"):
            check_interval(self, name, gt=0.0)
        check_range(self, "rolloff", ge=0.0, le=1.0)


class SynthConfig(pf.Config):
    sample_rate_hz: Annotated[float, msgspec.Meta(gt=0.0)] = 20e6
    center_freq_hz: float = 2.44e9
    #: 33 ms at 20 MS/s, the capture frame of the G20 detector.
    frame_samples: Annotated[int, msgspec.Meta(gt=0)] = 660_000
    n_frames: Annotated[int, msgspec.Meta(gt=0)] = 4
    #: Noise density N0 in dB re 1/Hz (complex noise variance N0 * fs: -73 dB -> ~1 at 20 MS/s).
    n0_db_hz: float = -73.0
    start_time_us: int = 1_700_000_000_000_000
    tones: tuple[ToneSpec, ...] = (
        ToneSpec(freq_hz=-5.0e6, snr_db=-10.0),
        ToneSpec(freq_hz=6.25e6, snr_db=-10.0),
    )
    #: Width of a tone's truth box (about three bins of a 4096-point STFT at 20 MS/s).
    tone_box_hz: Annotated[float, msgspec.Meta(gt=0.0)] = 15e3
    bursts: BurstSpec = msgspec.field(default_factory=BurstSpec)

    def __post_init__(self) -> None:
        check_range(self, "sample_rate_hz", gt=0.0)
        check_range(self, "frame_samples", gt=0)
        check_range(self, "n_frames", gt=0)
        for tone in self.tones:
            if abs(tone.freq_hz) >= self.sample_rate_hz / 2:
                raise ValueError(
                    f"SynthConfig.tones: freq_hz {tone.freq_hz} is outside the baseband "
                    f"(|f| < fs/2 = {self.sample_rate_hz / 2})"
                )


def _place(cfg: SynthConfig, rng: np.random.Generator) -> list[tuple]:
    """Bursts of one frame: [(kind, start, n, f_lo, f_hi, snr_db)], drawn until they keep the
    configured distance from each other and from the tones."""
    b, fs = cfg.bursts, cfg.sample_rate_hz
    frame_s = cfg.frame_samples / fs
    placed: list[tuple] = []
    for _ in range(b.per_frame):
        for _attempt in range(2000):
            kind = b.kinds[int(rng.integers(len(b.kinds)))]
            dur = rng.uniform(*b.duration_s)
            bw = rng.uniform(*b.bandwidth_hz)
            snr = rng.uniform(*b.snr_db)
            t0 = rng.uniform(b.edge_s, frame_s - b.edge_s - dur)
            fc = rng.uniform(b.band_hz[0] + bw / 2, b.band_hz[1] - bw / 2)
            lo, hi = fc - bw / 2, fc + bw / 2
            if any(lo - b.clearance_hz < t.freq_hz < hi + b.clearance_hz for t in cfg.tones):
                continue
            if any(_clash(t0, dur, lo, hi, p, fs, b) for p in placed):
                continue
            placed.append((kind, round(t0 * fs), round(dur * fs), lo, hi, snr))
            break
        else:
            raise ValueError(
                f"rf.synth: cannot place {b.per_frame} bursts per frame {frame_s * 1e3:.1f} ms "
                "long with the configured min_gap_s / clearance_hz; lower bursts.per_frame, "
                "min_gap_s or clearance_hz, or widen band_hz"
            )
    return placed


def _clash(t0: float, dur: float, lo: float, hi: float, other: tuple, fs: float, b) -> bool:
    _, start, n, olo, ohi, _ = other
    bands = lo - b.clearance_hz < ohi and olo < hi + b.clearance_hz
    times = t0 - b.min_gap_s < (start + n) / fs and start / fs < t0 + dur + b.min_gap_s
    return bands and times


def _burst(cfg: SynthConfig, rng, kind: str, n: int, lo: float, hi: float, snr_db: float):
    """(samples, occupied band) of one burst at baseband, scaled to its in-band SNR."""
    fs, b = cfg.sample_rate_hz, cfg.bursts
    n0 = 10 ** (cfg.n0_db_hz / 10)
    if kind == "qpsk":
        wave, bw = signals.qpsk_burst(rng, n, fs, hi - lo, b.rolloff)
        centre = (lo + hi) / 2
        lo, hi = centre - bw / 2, centre + bw / 2
    else:
        f_from, f_to = (lo, hi) if rng.random() < 0.5 else (hi, lo)
        wave = signals.chirp(n, fs, f_from, f_to)
        bw = hi - lo
    power = 10 ** (snr_db / 10) * n0 * bw
    wave = wave * signals.ramp(n, round(b.ramp_s * fs)) * np.sqrt(power)
    return wave, lo, hi


@pf.stage(
    version="1",
    outputs=["iq", "truth"],
    deps=[
        _place,
        _clash,
        _burst,
        signals.qpsk_burst,
        signals.rrc_taps,
        signals.upsample_filter,
        signals.chirp,
        signals.ramp,
        signals.mix,
        make_boxes,
    ],
)
def synth(cfg: SynthConfig, *, rng: np.random.Generator) -> dict:
    """A capture of ``n_frames`` frames with AWGN, the configured tones and random bursts;
    ``truth`` holds a box per burst and per tone per frame."""
    fs, frame = cfg.sample_rate_hz, cfg.frame_samples
    total = frame * cfg.n_frames
    sigma2 = 10 ** (cfg.n0_db_hz / 10) * fs
    x = rng.standard_normal(2 * total, dtype=np.float32).view(np.complex64)
    x *= np.float32(np.sqrt(sigma2 / 2))
    rows, frames, labels, scores = [], [], [], []
    t_all = np.arange(total) / fs
    for tone in cfg.tones:
        amp = np.sqrt(sigma2 * 10 ** (tone.snr_db / 10))
        phase = rng.uniform(0, 2 * np.pi)
        x += (amp * np.exp(1j * (2 * np.pi * tone.freq_hz * t_all + phase))).astype(np.complex64)
    del t_all
    for f in range(cfg.n_frames):
        for tone in cfg.tones:
            half = cfg.tone_box_hz / 2
            rows.append(
                (f * frame / fs, (f + 1) * frame / fs, tone.freq_hz - half, tone.freq_hz + half)
            )
            frames.append(f)
            labels.append("tone")
            scores.append(tone.snr_db)
        for kind, start, n, lo, hi, snr in _place(cfg, rng):
            wave, lo, hi = _burst(cfg, rng, kind, n, lo, hi, snr)
            begin = f * frame + start
            x[begin : begin + n] += signals.mix(
                wave, (lo + hi) / 2 if kind == "qpsk" else 0.0, fs, begin
            ).astype(np.complex64)
            rows.append((begin / fs, (begin + n) / fs, lo, hi))
            frames.append(f)
            labels.append(kind)
            scores.append(snr)
    iq = IQ(
        samples=x,
        sample_rate_hz=fs,
        center_freq_hz=cfg.center_freq_hz,
        start_time_us=cfg.start_time_us,
    )
    truth: Boxes = make_boxes(rows, frames, labels, scores)
    return {"iq": iq, "truth": truth}
