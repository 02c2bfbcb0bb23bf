"""Gray-mapped square QAM (QPSK, 16-QAM): bits <-> symbols, and closed-form bit error rates.

The bit labelling is the one OptiCommPy's ``modulateGray(bits, M, "qam")`` uses, so both
transmitter backends produce identical symbols from identical bits: the first half of each
symbol's bits selects the quadrature level (Gray code, highest level first), the second half the
in-phase level (Gray code, lowest level first). Constellations have unit mean energy.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

Modulation = Literal["qpsk", "16qam"]

#: Bits per symbol of each supported format.
BITS_PER_SYMBOL: dict[str, int] = {"qpsk": 2, "16qam": 4}
#: Mean energy of the un-normalised odd-integer square constellation (divide by its sqrt).
_RAW_ENERGY: dict[str, float] = {"qpsk": 2.0, "16qam": 10.0}


def bits_per_symbol(modulation: str) -> int:
    try:
        return BITS_PER_SYMBOL[modulation]
    except KeyError:
        raise ValueError(
            f"unknown modulation {modulation!r}; use one of {', '.join(BITS_PER_SYMBOL)}"
        ) from None


def _gray_to_index(bits: np.ndarray) -> np.ndarray:
    """Gray-coded bit columns (MSB first) -> level index 0..L-1."""
    index = np.zeros(bits.shape[0], dtype=np.int64)
    acc = np.zeros(bits.shape[0], dtype=np.int64)
    for col in range(bits.shape[1]):
        acc ^= bits[:, col].astype(np.int64)  # binary bit = xor of the Gray bits so far
        index = (index << 1) | acc
    return index


def _index_to_gray(index: np.ndarray, width: int) -> np.ndarray:
    gray = index ^ (index >> 1)
    shifts = np.arange(width - 1, -1, -1)
    return ((gray[:, None] >> shifts) & 1).astype(np.uint8)


def constellation(modulation: str) -> np.ndarray:
    """All symbols of a format, indexed by their bit label read as a binary number (MSB first)."""
    k = bits_per_symbol(modulation)
    labels = np.arange(2**k)
    bits = ((labels[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)
    return map_bits(bits.ravel(), modulation)


def map_bits(bits: np.ndarray, modulation: str) -> np.ndarray:
    """Map a flat 0/1 array (length a multiple of bits per symbol) to unit-energy symbols."""
    k = bits_per_symbol(modulation)
    bits = np.asarray(bits)
    if bits.ndim != 1 or bits.size % k:
        raise ValueError(f"{modulation}: need a flat bit array whose length is a multiple of {k}")
    cols = bits.reshape(-1, k)
    half = k // 2
    levels = 2**half
    q = 2 * _gray_to_index(cols[:, :half]) - (levels - 1)
    i = 2 * _gray_to_index(cols[:, half:]) - (levels - 1)
    return (i - 1j * q) / np.sqrt(_RAW_ENERGY[modulation])


def slice_symbols(received: np.ndarray, modulation: str) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-distance decisions for unit-energy symbols: (decided symbols, their bits, flat)."""
    k = bits_per_symbol(modulation)
    half = k // 2
    levels = 2**half
    scaled = np.asarray(received) * np.sqrt(_RAW_ENERGY[modulation])
    i_idx = np.clip(np.rint((scaled.real + (levels - 1)) / 2), 0, levels - 1).astype(np.int64)
    q_idx = np.clip(np.rint((-scaled.imag + (levels - 1)) / 2), 0, levels - 1).astype(np.int64)
    bits = np.concatenate([_index_to_gray(q_idx, half), _index_to_gray(i_idx, half)], axis=1)
    decided = ((2 * i_idx - (levels - 1)) - 1j * (2 * q_idx - (levels - 1))) / np.sqrt(
        _RAW_ENERGY[modulation]
    )
    return decided, bits.ravel()


def qfunc(x: float) -> float:
    """Gaussian tail probability Q(x) = 0.5 erfc(x / sqrt(2))."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def ber_theory(modulation: str, ebn0_db: float | None) -> float:
    """Exact AWGN bit error probability of Gray-mapped QPSK / 16-QAM (coherent, ideal).

    QPSK: 0.5 erfc(sqrt(Eb/N0)). 16-QAM (two Gray 4-PAM rails, a = sqrt(4/5 Eb/N0)):
    (3 Q(a) + 2 Q(3a) - Q(5a)) / 4. ``None`` (no noise) gives 0.
    """
    if ebn0_db is None:
        return 0.0
    g = 10.0 ** (float(ebn0_db) / 10.0)
    if modulation == "qpsk":
        return qfunc(math.sqrt(2.0 * g))
    if modulation == "16qam":
        a = math.sqrt(0.8 * g)
        return (3 * qfunc(a) + 2 * qfunc(3 * a) - qfunc(5 * a)) / 4
    raise ValueError(f"unknown modulation {modulation!r}; use one of {', '.join(BITS_PER_SYMBOL)}")
