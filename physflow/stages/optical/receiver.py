"""``optical.rx``: CD compensation, matched filter, timing and downsampling, gain/phase."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from . import fiber, pulse

Normalisation = Literal["pilots", "blind", "none"]


class RxConfig(pf.Config):
    #: Undo the chromatic dispersion of the link (frequency-domain all-pass filter).
    cd_compensation: bool = True
    #: Length to compensate; null takes the channel's length from its ``info``.
    cd_length_km: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    #: "pilots": least-squares complex gain against the known reference symbols (the first
    #: ``n_pilots``, all if null). "blind": unit power and 4th-power phase (pi/2 ambiguity).
    normalisation: Normalisation = "pilots"
    n_pilots: Annotated[int, msgspec.Meta(gt=0)] | None = None

    def __post_init__(self) -> None:
        check_choice(self, "normalisation", Normalisation)
        check_range(self, "cd_length_km", ge=0.0)
        check_range(self, "n_pilots", gt=0)


def best_sampling_phase(filtered: np.ndarray, samples_per_symbol: int) -> int:
    """Timing recovery: the sampling phase with the largest mean power (the eye's opening)."""
    powers = [
        np.mean(np.abs(filtered[p::samples_per_symbol]) ** 2) for p in range(samples_per_symbol)
    ]
    return int(np.argmax(powers))


def normalise(
    samples: np.ndarray, reference: np.ndarray | None, method: str, n_pilots: int | None
) -> np.ndarray:
    if method == "none":
        return samples
    if method == "pilots":
        if reference is None:
            raise ValueError(
                "rx normalisation 'pilots' needs the transmitted symbols: wire "
                "reference='tx.symbols', or set normalisation: blind"
            )
        n = reference.size if n_pilots is None else min(n_pilots, reference.size)
        gain = np.vdot(reference[:n], samples[:n]) / np.vdot(reference[:n], reference[:n])
        return samples / gain
    rotation = np.angle(np.mean(samples**4)) / 4 - np.pi / 4
    return samples * np.exp(-1j * rotation) / np.sqrt(np.mean(np.abs(samples) ** 2))


@pf.stage(
    version="1",
    deps=[
        best_sampling_phase,
        normalise,
        fiber.cd_compensator,
        fiber.angular_frequencies,
        pulse.matched_filter_spectrum,
        pulse.rrc_response,
        pulse.raised_cosine_spectrum,
    ],
)
def rx(
    cfg: RxConfig, waveform: np.ndarray, info: dict, reference: np.ndarray | None = None
) -> np.ndarray:
    """Coherent receiver DSP; returns one complex sample per symbol, scaled to the unit-energy
    constellation."""
    sps = int(info["samples_per_symbol"])
    spectrum = np.fft.fft(np.asarray(waveform))
    if cfg.cd_compensation:
        length_km = info.get("length_km", 0.0) if cfg.cd_length_km is None else cfg.cd_length_km
        beta2 = info.get("beta2_s2_per_m", 0.0)
        if length_km and beta2:
            omega = fiber.angular_frequencies(spectrum.size, float(info["sample_rate_hz"]))
            spectrum = spectrum * fiber.cd_compensator(omega, beta2, length_km * 1e3)
    filtered = np.fft.ifft(pulse.matched_filter_spectrum(spectrum, sps, float(info["rolloff"])))
    phase = best_sampling_phase(filtered, sps)
    samples = filtered[phase::sps][: int(info["n_symbols"])]
    ref = None if reference is None else np.asarray(reference)
    return normalise(samples, ref, cfg.normalisation, cfg.n_pilots)
