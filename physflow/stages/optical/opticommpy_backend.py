"""The optional OptiCommPy backend (``backend: "opticommpy"``), isolated from global RNG state.

OptiCommPy (GPL-3.0, ``pip install physflow[optical]``) draws random numbers from numpy's
*global* generator (``np.random.seed`` inside its sources) and, in jitted code, from numba's
per-thread generator. physflow promises that stages never read or change global state, so every
call goes through :func:`isolated`: it holds one process-wide lock, shared with the runner's
check of the global state (two stages on two threads cannot interleave their seeding, and the
runner never snapshots the borrowed state); it saves the numpy and numba states, seeds both from
the stage's own ``rng`` (results are deterministic and cache keys stay honest), and restores
both afterwards, even on error. Code outside physflow that uses the global generator
concurrently on another thread could still observe the seeded state during the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import physflow as pf

from .modulation import bits_per_symbol
from .pulse import rrc_taps_circular, upsample

_QAM_ORDER = {"qpsk": 4, "16qam": 16}


#: The OptiCommPy release this backend is validated against (tests cross-check it). It is a
#: stage dependency, so changing it changes the fingerprints: results computed with one
#: OptiCommPy are never served as results of another.
SUPPORTED_VERSION = "0.10.0"


def require() -> None:
    """Import OptiCommPy or explain how to get it; refuse an unvalidated version."""
    from importlib import metadata

    try:
        import optic  # noqa: F401

        installed = metadata.version("opticommpy")
    except (ImportError, metadata.PackageNotFoundError) as exc:
        raise ImportError(
            "backend 'opticommpy' needs the OptiCommPy package: pip install 'physflow[optical]' "
            "(or set backend: numpy in the stage config)."
        ) from exc
    if installed != SUPPORTED_VERSION:
        raise ImportError(
            f"backend 'opticommpy' is validated against OptiCommPy {SUPPORTED_VERSION}, but "
            f"{installed} is installed (0.11.0 changed its API). Install it with "
            f"pip install 'opticommpy=={SUPPORTED_VERSION}', or use backend: numpy."
        )


def _numba_state() -> tuple[Any, Any] | None:
    try:
        from numba import _helperlib
    except ImportError:  # pragma: no cover - numba is an OptiCommPy dependency
        return None
    ptr = _helperlib.rnd_get_np_state_ptr()
    return ptr, _helperlib.rnd_get_state(ptr)


@contextmanager
def isolated(seed: int) -> Iterator[None]:
    """Run OptiCommPy code with global numpy (and numba) RNG seeded from ``seed``, then restore."""
    with pf.GLOBAL_RNG_LOCK:
        saved_np = np.random.get_state()
        saved_nb = _numba_state()
        try:
            np.random.seed(seed)
            if saved_nb is not None:
                from numba import _helperlib

                _helperlib.rnd_seed(saved_nb[0], seed)
            yield
        finally:
            np.random.set_state(saved_np)
            if saved_nb is not None:
                from numba import _helperlib

                _helperlib.rnd_set_state(*saved_nb)


def _seed_from(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**32 - 1, dtype=np.uint64))


def transmit(
    modulation: str,
    n_symbols: int,
    samples_per_symbol: int,
    rolloff: float,
    filter_span_symbols: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bits (OptiCommPy ``bitSource``), Gray symbols (``modulateGray``) and an RRC waveform
    shaped with OptiCommPy's ``rrcFilterTaps``, applied circularly, with unit mean power."""
    require()
    from optic.comm.modulation import grayMapping, modulateGray
    from optic.comm.sources import bitSource
    from optic.dsp.core import rrcFilterTaps
    from optic.utils import parameters

    k = bits_per_symbol(modulation)
    order = _QAM_ORDER[modulation]
    n_samples = n_symbols * samples_per_symbol
    n_taps = min(filter_span_symbols * samples_per_symbol + 1, n_samples - 1 + n_samples % 2)
    with isolated(_seed_from(rng)):
        source = parameters()
        source.nBits = n_symbols * k
        source.mode = "random"
        bits = np.asarray(bitSource(source), dtype=np.uint8)
        energy = np.mean(np.abs(grayMapping(order, "qam")) ** 2)  # constellation, not sample
        symbols = modulateGray(bits, order, "qam") / np.sqrt(energy)
        # OptiCommPy's pulseShape() puts its taps on linspace(-n//2, n//2, n), a grid that is
        # stretched by n/(n-1) (and off-centre for odd n): residual ISI of ~20% EVM at 64
        # symbols. Its RRC formula is fine, so evaluate it on the exact grid k/sps.
        t = (np.arange(n_taps) - n_taps // 2) / samples_per_symbol
        taps = np.sinc(t) if rolloff == 0 else np.asarray(rrcFilterTaps(t, rolloff, 1.0))
    taps = taps * np.sqrt(samples_per_symbol / np.sum(taps**2))  # unit mean power
    kernel = np.fft.fft(rrc_taps_circular(taps, n_samples))
    waveform = np.fft.ifft(np.fft.fft(upsample(symbols, samples_per_symbol)) * kernel)
    return bits, np.asarray(symbols, dtype=np.complex128), waveform


def evaluate(
    received: np.ndarray, symbols: np.ndarray, modulation: str, rng: np.random.Generator
) -> dict[str, float]:
    """BER, SER and SNR from ``fastBERcalc``; EVM (rms ratio) from ``calcEVM``."""
    require()
    from optic.comm.metrics import calcEVM, fastBERcalc

    order = _QAM_ORDER[modulation]
    with isolated(_seed_from(rng)):
        # OptiCommPy normalises its arguments in place: hand it private copies.
        ber, ser, snr = fastBERcalc(np.array(received), np.array(symbols), order, "qam")
        evm = calcEVM(np.array(received), order, "qam", np.array(symbols))
    return {
        "ber": float(ber[0]),
        "ser": float(ser[0]),
        "snr_db": float(snr[0]),
        "evm": float(np.sqrt(evm[0])),
    }


def theory_ber(modulation: str, ebn0_db: float) -> float:
    """OptiCommPy's ``theoryBER`` (nearest-neighbour approximation for 16-QAM)."""
    require()
    from optic.comm.metrics import theoryBER

    return float(theoryBER(_QAM_ORDER[modulation], ebn0_db, "qam"))
