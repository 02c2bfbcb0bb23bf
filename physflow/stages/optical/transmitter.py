"""``optical.tx``: random bits -> Gray-mapped QPSK/16-QAM symbols -> oversampled RRC waveform."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import numpy as np

import physflow as pf

from ..checks import check_choice, check_range
from . import modulation as mod
from . import opticommpy_backend, pulse

Backend = Literal["numpy", "opticommpy"]


class TxConfig(pf.Config):
    modulation: mod.Modulation = "qpsk"
    n_symbols: Annotated[int, msgspec.Meta(gt=0)] = 16384
    samples_per_symbol: Annotated[int, msgspec.Meta(ge=2)] = 4
    #: Roll-off of the root-raised-cosine pulse.
    rolloff: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.1
    symbol_rate_baud: Annotated[float, msgspec.Meta(gt=0.0)] = 32e9
    backend: Backend = "numpy"
    #: Length of OptiCommPy's truncated RRC filter (the numpy backend's filter is exact).
    filter_span_symbols: Annotated[int, msgspec.Meta(gt=0)] = 64

    def __post_init__(self) -> None:
        check_choice(self, "modulation", mod.Modulation)
        check_choice(self, "backend", Backend)
        check_range(self, "n_symbols", gt=0)
        check_range(self, "samples_per_symbol", ge=2)
        check_range(self, "rolloff", ge=0.0, le=1.0)
        check_range(self, "symbol_rate_baud", gt=0.0)
        check_range(self, "filter_span_symbols", gt=0)


def signal_info(cfg: TxConfig) -> dict[str, Any]:
    """What downstream stages need to know about the signal (passed on as the ``info`` output)."""
    return {
        "modulation": cfg.modulation,
        "bits_per_symbol": mod.bits_per_symbol(cfg.modulation),
        "n_symbols": cfg.n_symbols,
        "samples_per_symbol": cfg.samples_per_symbol,
        "rolloff": cfg.rolloff,
        "symbol_rate_baud": cfg.symbol_rate_baud,
        "sample_rate_hz": cfg.symbol_rate_baud * cfg.samples_per_symbol,
    }


@pf.stage(
    version="1",
    outputs=["bits", "symbols", "waveform", "info"],
    deps=[
        signal_info,
        mod.map_bits,
        mod._gray_to_index,
        pulse.shape,
        pulse.upsample,
        pulse.rrc_response,
        pulse.raised_cosine_spectrum,
        opticommpy_backend.transmit,
        opticommpy_backend.isolated,
        opticommpy_backend.SUPPORTED_VERSION,
        opticommpy_backend.require,
        pulse.rrc_taps_circular,
    ],
)
def tx(cfg: TxConfig, *, rng: np.random.Generator) -> dict[str, Any]:
    """Transmitter. The waveform has unit mean power (launch power is set by the channel) and
    is periodic over the block, so the matched filter recovers the symbols without ISI."""
    if cfg.backend == "opticommpy":
        bits, symbols, waveform = opticommpy_backend.transmit(
            cfg.modulation,
            cfg.n_symbols,
            cfg.samples_per_symbol,
            cfg.rolloff,
            cfg.filter_span_symbols,
            rng,
        )
    else:
        bits = rng.integers(
            0, 2, size=cfg.n_symbols * mod.bits_per_symbol(cfg.modulation), dtype=np.uint8
        )
        symbols = mod.map_bits(bits, cfg.modulation)
        waveform = pulse.shape(symbols, cfg.samples_per_symbol, cfg.rolloff)
    return {"bits": bits, "symbols": symbols, "waveform": waveform, "info": signal_info(cfg)}
