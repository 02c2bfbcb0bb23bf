"""``optical.metrics``: BER, SER, EVM and SNR measured, and the closed-form BER for comparison."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

import physflow as pf

from ..checks import check_choice
from . import modulation as mod
from . import opticommpy_backend

Backend = Literal["numpy", "opticommpy"]

METRICS = (
    "ber",
    "ser",
    "evm",
    "snr_db",
    "ber_theory",
    "n_bits",
    "n_bit_errors",
    "n_symbol_errors",
    "ebn0_db",
)


class MetricsConfig(pf.Config):
    backend: Backend = "numpy"

    def __post_init__(self) -> None:
        check_choice(self, "backend", Backend)


def measure(
    received: np.ndarray, bits: np.ndarray, symbols: np.ndarray, modulation: str
) -> dict[str, Any]:
    """Hard decisions (Gray demapping) against the transmitted bits and symbols."""
    decided, rx_bits = mod.slice_symbols(received, modulation)
    bit_errors = int(np.count_nonzero(rx_bits != bits))
    symbol_errors = int(np.count_nonzero(~np.isclose(decided, symbols, atol=1e-6)))
    error_power = float(np.mean(np.abs(received - symbols) ** 2))
    signal_power = float(np.mean(np.abs(symbols) ** 2))
    return {
        "ber": bit_errors / bits.size,
        "ser": symbol_errors / symbols.size,
        "evm": float(np.sqrt(error_power / signal_power)),
        "snr_db": float(10 * np.log10(signal_power / error_power)) if error_power else float("inf"),
        "n_bits": int(bits.size),
        "n_bit_errors": bit_errors,
        "n_symbol_errors": symbol_errors,
    }


@pf.stage(
    version="1",
    outputs=list(METRICS),
    deps=[
        measure,
        mod.slice_symbols,
        mod._index_to_gray,
        mod.ber_theory,
        mod.qfunc,
        opticommpy_backend.evaluate,
        opticommpy_backend.isolated,
        opticommpy_backend.SUPPORTED_VERSION,
        opticommpy_backend.require,
    ],
)
def metrics(
    cfg: MetricsConfig,
    received: np.ndarray,
    bits: np.ndarray,
    symbols: np.ndarray,
    info: dict,
    *,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Error counts and rates; ``ber_theory`` is the exact AWGN value at the channel's Eb/N0
    (0 without noise). ``evm`` is the rms error-vector ratio, ``snr_db`` the data-aided SNR."""
    modulation = str(info["modulation"])
    received = np.asarray(received)
    bits = np.asarray(bits)
    symbols = np.asarray(symbols)
    if received.shape != symbols.shape:
        raise ValueError(
            f"metrics: received has {received.size} symbols but the transmitter sent "
            f"{symbols.size}; wire received='rx' and symbols='tx.symbols' from the same link"
        )
    out = measure(received, bits, symbols, modulation)
    if cfg.backend == "opticommpy":
        theirs = opticommpy_backend.evaluate(received, symbols, modulation, rng)
        out.update(theirs)
        out["n_bit_errors"] = round(theirs["ber"] * bits.size)
        out["n_symbol_errors"] = round(theirs["ser"] * symbols.size)
    ebn0 = info.get("ebn0_db")
    out["ber_theory"] = mod.ber_theory(modulation, ebn0)
    out["ebn0_db"] = None if ebn0 is None else float(ebn0)
    return out
