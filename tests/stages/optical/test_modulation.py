"""Gray mapping and decisions, checked against the constellation geometry."""

from __future__ import annotations

import itertools

import msgspec
import numpy as np
import pytest

from physflow.stages.optical import ChannelConfig, MetricsConfig, RxConfig, TxConfig
from physflow.stages.optical import modulation as mod


@pytest.mark.parametrize("modulation", ["qpsk", "16qam"])
def test_constellation_is_unit_energy_square_grid_with_gray_labels(modulation):
    const = mod.constellation(modulation)
    k = mod.bits_per_symbol(modulation)
    assert const.size == 2**k and len(set(np.round(const, 12))) == 2**k
    assert np.mean(np.abs(const) ** 2) == pytest.approx(1.0, rel=1e-14)
    d_min = min(abs(a - b) for a, b in itertools.combinations(const, 2))
    for (i, a), (j, b) in itertools.combinations(enumerate(const), 2):
        if abs(abs(a - b) - d_min) < 1e-9:  # nearest neighbours differ in exactly one bit
            assert bin(i ^ j).count("1") == 1, (modulation, i, j)


@pytest.mark.parametrize("modulation", ["qpsk", "16qam"])
def test_slicing_inverts_mapping_and_decides_nearest_point(modulation):
    rng = np.random.default_rng(5)
    k = mod.bits_per_symbol(modulation)
    bits = rng.integers(0, 2, 4000 * k, dtype=np.uint8)
    symbols = mod.map_bits(bits, modulation)
    decided, back = mod.slice_symbols(symbols, modulation)
    np.testing.assert_array_equal(back, bits)
    np.testing.assert_allclose(decided, symbols, atol=1e-12)
    noisy = symbols + 0.3 * (
        rng.standard_normal(symbols.size) + 1j * rng.standard_normal(symbols.size)
    )
    decided, _ = mod.slice_symbols(noisy, modulation)
    const = mod.constellation(modulation)
    brute = const[np.argmin(np.abs(noisy[:, None] - const[None, :]), axis=1)]
    np.testing.assert_allclose(decided, brute, atol=1e-12)


def test_bad_choices_are_rejected_with_the_field_named():
    with pytest.raises(ValueError, match=r"TxConfig.modulation = '8psk'.*'qpsk', '16qam'"):
        TxConfig(modulation="8psk")
    with pytest.raises(msgspec.ValidationError, match=r"\$.modulation"):
        msgspec.convert({"modulation": "64qam"}, TxConfig)
    with pytest.raises(ValueError, match="rolloff"):
        TxConfig(rolloff=1.5)
    with pytest.raises(ValueError, match="samples_per_symbol"):
        TxConfig(samples_per_symbol=1)
    with pytest.raises(ValueError, match="step_km"):
        ChannelConfig(step_km=0.0)
    with pytest.raises(ValueError, match="normalisation"):
        RxConfig(normalisation="magic")
    with pytest.raises(ValueError, match="backend"):
        MetricsConfig(backend="matlab")
    with pytest.raises(ValueError, match="unknown modulation"):
        mod.ber_theory("8psk", 3.0)
