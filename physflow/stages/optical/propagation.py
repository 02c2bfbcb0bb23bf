"""``optical.channel``: launch power, fibre (loss, dispersion, Kerr effect), then AWGN at Eb/N0."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_range
from . import fiber


class ChannelConfig(pf.Config):
    #: Eb/N0 of the received signal in dB; null means no noise.
    ebn0_db: float | None = 10.0
    length_km: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    alpha_db_per_km: Annotated[float, msgspec.Meta(ge=0.0)] = 0.2
    dispersion_ps_nm_km: float = 17.0
    #: Kerr coefficient; non-zero selects split-step Fourier propagation.
    gamma_per_w_km: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    step_km: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0
    launch_power_dbm: float = 0.0
    wavelength_nm: Annotated[float, msgspec.Meta(gt=0.0)] = 1550.0

    def __post_init__(self) -> None:
        for name in ("length_km", "alpha_db_per_km", "gamma_per_w_km"):
            check_range(self, name, ge=0.0)
        check_range(self, "step_km", gt=0.0)
        check_range(self, "wavelength_nm", gt=0.0)


def noise_variance(received_power_w: float, info: dict[str, Any], ebn0_db: float) -> float:
    """Per-sample complex noise variance for a given Eb/N0.

    With sample period Ts, white noise of variance s2 has N0 = s2 Ts; a symbol lasts sps Ts and
    carries Es = P sps Ts = k Eb. So s2 = P sps / (k Eb/N0). The unit-gain RRC matched filter
    then passes noise s2/sps per symbol sample, i.e. SNR = Es/N0 for any roll-off.
    """
    ebn0 = 10.0 ** (ebn0_db / 10.0)
    return received_power_w * info["samples_per_symbol"] / (info["bits_per_symbol"] * ebn0)


@pf.stage(
    version="1",
    outputs=["waveform", "info"],
    deps=[
        noise_variance,
        fiber.propagate_linear,
        fiber.propagate_ssfm,
        fiber.linear_operator,
        fiber.step_lengths,
        fiber.beta2_s2_per_m,
        fiber.alpha_per_m,
        fiber.angular_frequencies,
    ],
)
def channel(
    cfg: ChannelConfig, waveform: np.ndarray, info: dict, *, rng: np.random.Generator
) -> dict[str, Any]:
    """Fibre link plus receiver noise. The noise is referred to the nominal received power
    (launch power minus span loss), so Eb/N0 holds exactly for the transmitter's unit-power
    waveform whatever the modulation, oversampling or roll-off."""
    power_w = 1e-3 * 10.0 ** (cfg.launch_power_dbm / 10.0)
    field = np.asarray(waveform, dtype=np.complex128) * np.sqrt(power_w)
    fs = float(info["sample_rate_hz"])
    beta2 = fiber.beta2_s2_per_m(cfg.dispersion_ps_nm_km, cfg.wavelength_nm)
    alpha = fiber.alpha_per_m(cfg.alpha_db_per_km)
    length_m = cfg.length_km * 1e3
    if length_m > 0:
        if cfg.gamma_per_w_km > 0:
            field = fiber.propagate_ssfm(
                field, fs, length_m, alpha, beta2, cfg.gamma_per_w_km * 1e-3, cfg.step_km * 1e3
            )
        else:
            field = fiber.propagate_linear(field, fs, length_m, alpha, beta2)
    received_w = power_w * 10.0 ** (-cfg.alpha_db_per_km * cfg.length_km / 10.0)
    sigma2 = 0.0
    if cfg.ebn0_db is not None:
        sigma2 = noise_variance(received_w, info, cfg.ebn0_db)
        noise = rng.standard_normal((2, field.size))
        field = field + np.sqrt(sigma2 / 2) * (noise[0] + 1j * noise[1])
    link = {
        **info,
        "ebn0_db": cfg.ebn0_db,
        "length_km": cfg.length_km,
        "beta2_s2_per_m": beta2,
        "wavelength_nm": cfg.wavelength_nm,
        "launch_power_w": power_w,
        "received_power_w": received_w,
        "noise_variance": sigma2,
    }
    return {"waveform": field, "info": link}
