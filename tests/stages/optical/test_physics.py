"""The optical link against closed-form physics: BER theory, zero-ISI back-to-back, Parseval,
split-step vs linear and vs the analytic SPM solution, Gaussian-pulse dispersion, CD compensation,
and the Eb/N0 noise calibration for several oversampling factors and roll-offs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from physflow.stages.optical import (
    ChannelConfig,
    RxConfig,
    TxConfig,
    channel,
    fiber,
    link_pipeline,
    rx,
    tx,
)
from physflow.stages.optical import modulation as mod

binom = pytest.importorskip("scipy.stats").binom


def _run_link(store, **cfgs):
    p = link_pipeline(
        seed=cfgs.pop("seed", 3),
        tx_config=cfgs.pop("tx", TxConfig()),
        channel_config=cfgs.pop("channel", ChannelConfig()),
        rx_config=cfgs.pop("rx", RxConfig()),
    )
    res = p.run(store=store).raise_on_failure()
    return res


@pytest.mark.parametrize(
    ("modulation", "ebn0s"),
    [("qpsk", [2.0, 4.0, 6.0, 7.0]), ("16qam", [4.0, 6.0, 8.0, 10.0])],
)
def test_ber_within_binomial_99_interval_of_theory(store, modulation, ebn0s):
    n_symbols = 2**18  # 524k (QPSK) / 1M (16-QAM) bits: the 99% interval is a few % wide
    base = link_pipeline(
        seed=11,
        tx_config=TxConfig(modulation=modulation, n_symbols=n_symbols),
        channel_config=ChannelConfig(ebn0_db=0.0, length_km=40.0),
    )
    for ebn0 in ebn0s:
        res = base.with_values({"channel.ebn0_db": ebn0}).run(store=store).raise_on_failure()
        m = res["metrics"]
        if modulation == "qpsk":
            theory = 0.5 * math.erfc(math.sqrt(10 ** (ebn0 / 10)))
        else:  # exact Gray 16-QAM, written out independently of the package
            a = math.sqrt(0.8 * 10 ** (ebn0 / 10))
            q = lambda x: 0.5 * math.erfc(x / math.sqrt(2))  # noqa: E731
            theory = (3 * q(a) + 2 * q(3 * a) - q(5 * a)) / 4
        assert m["ber_theory"] == pytest.approx(theory, rel=1e-12)
        n_bits = n_symbols * mod.bits_per_symbol(modulation)
        assert m["n_bits"] == n_bits
        lo, hi = binom.ppf(0.005, n_bits, theory), binom.ppf(0.995, n_bits, theory)
        assert hi - lo < 0.3 * n_bits * theory, "interval not tight: use more symbols"
        assert lo <= m["n_bit_errors"] <= hi, (modulation, ebn0, m["n_bit_errors"], lo, hi)
        assert m["ber"] == m["n_bit_errors"] / n_bits
    # the transmitter ran once for all Eb/N0 points
    assert res.outcome.states["tx"].status == "hit"


@pytest.mark.parametrize("modulation", ["qpsk", "16qam"])
@pytest.mark.parametrize("length_km", [0.0, 120.0])
def test_back_to_back_without_noise_is_error_free(store, modulation, length_km):
    res = _run_link(
        store,
        tx=TxConfig(modulation=modulation, n_symbols=4096, rolloff=0.25),
        channel=ChannelConfig(ebn0_db=None, length_km=length_km),
    )
    m = res["metrics"]
    assert m["n_bit_errors"] == 0 and m["n_symbol_errors"] == 0
    assert m["ber"] == 0.0 and m["ber_theory"] == 0.0
    assert m["evm"] < 1e-9
    np.testing.assert_allclose(res["rx"], res["tx.symbols"], atol=1e-9)


def test_noise_is_referred_to_ebn0_for_any_oversampling_and_rolloff(store):
    """Measured (data-aided) SNR at the decision point equals Es/N0 = k Eb/N0."""
    for sps, rolloff, modulation in [(2, 0.0, "qpsk"), (4, 0.5, "16qam"), (8, 1.0, "qpsk")]:
        res = _run_link(
            store,
            tx=TxConfig(
                modulation=modulation, n_symbols=2**16, samples_per_symbol=sps, rolloff=rolloff
            ),
            channel=ChannelConfig(ebn0_db=5.0, length_km=0.0, launch_power_dbm=-7.0),
        )
        expected = 5.0 + 10 * math.log10(mod.bits_per_symbol(modulation))
        # 65k symbols: the SNR estimate's standard deviation is ~0.02 dB
        assert res["metrics"]["snr_db"] == pytest.approx(expected, abs=0.1), (sps, rolloff)


def _field(n_symbols=2048, sps=4, modulation="16qam", seed=0):
    out = tx.func(
        TxConfig(modulation=modulation, n_symbols=n_symbols, samples_per_symbol=sps),
        rng=np.random.default_rng(seed),
    )
    return out


def test_split_step_with_zero_gamma_equals_linear_channel():
    out = _field()
    fs = out["info"]["sample_rate_hz"]
    field = out["waveform"] * math.sqrt(1e-3)
    beta2 = fiber.beta2_s2_per_m(17.0, 1550.0)
    alpha = fiber.alpha_per_m(0.2)
    linear = fiber.propagate_linear(field, fs, 100e3, alpha, beta2)
    ssfm = fiber.propagate_ssfm(field, fs, 100e3, alpha, beta2, 0.0, 3e3)
    np.testing.assert_allclose(ssfm, linear, rtol=0, atol=1e-12 * np.abs(linear).max())
    with_kerr = fiber.propagate_ssfm(field * 10, fs, 100e3, alpha, beta2, 1.3e-3, 3e3) / 10
    assert np.abs(with_kerr - linear).max() > 1e-3 * np.abs(linear).max()  # gamma does matter


def test_split_step_matches_analytic_self_phase_modulation():
    """Without dispersion the NLSE's exact solution is A0 e^{-aL/2} e^{j g |A0|^2 Leff}."""
    out = _field()
    field = out["waveform"] * math.sqrt(10e-3)  # 10 dBm
    alpha, gamma, length = fiber.alpha_per_m(0.2), 1.3e-3, 80e3
    got = fiber.propagate_ssfm(field, out["info"]["sample_rate_hz"], length, alpha, 0.0, gamma, 7e3)
    l_eff = (1 - math.exp(-alpha * length)) / alpha
    expected = (
        field * math.exp(-alpha * length / 2) * np.exp(1j * gamma * np.abs(field) ** 2 * l_eff)
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_lossless_noiseless_channel_conserves_energy(store):
    """Parseval: dispersion and the Kerr phase are unitary, so with alpha = 0 the energy of the
    field is the launch energy, at high power where the nonlinearity is strong."""
    out = _field(n_symbols=4096)
    cfg = ChannelConfig(
        ebn0_db=None,
        length_km=200.0,
        alpha_db_per_km=0.0,
        gamma_per_w_km=1.3,
        step_km=5.0,
        launch_power_dbm=15.0,
    )
    got = channel.func(cfg, out["waveform"], out["info"], rng=np.random.default_rng(0))
    launched = np.sum(np.abs(out["waveform"]) ** 2) * 10 ** (15.0 / 10) * 1e-3
    energy_t = np.sum(np.abs(got["waveform"]) ** 2)
    energy_f = np.sum(np.abs(np.fft.fft(got["waveform"])) ** 2) / got["waveform"].size
    assert energy_t == pytest.approx(launched, rel=1e-10)
    assert energy_f == pytest.approx(launched, rel=1e-10)
    linear = fiber.propagate_linear(
        out["waveform"] * math.sqrt(launched / np.sum(np.abs(out["waveform"]) ** 2)),
        out["info"]["sample_rate_hz"],
        200e3,
        0.0,
        fiber.beta2_s2_per_m(17.0, 1550.0),
    )
    assert np.abs(got["waveform"] - linear).max() > 0.01 * np.abs(linear).max()


def test_dispersion_broadens_a_gaussian_pulse_as_theory():
    """T(L) = T0 sqrt(1 + (b2 L / T0^2)^2) for an unchirped Gaussian |A|^2 ~ exp(-t^2/T0^2)."""
    fs, n = 1e12, 2**14
    t = (np.arange(n) - n / 2) / fs
    t0 = 10e-12
    pulse = np.exp(-(t**2) / (2 * t0**2)).astype(complex)
    beta2 = fiber.beta2_s2_per_m(17.0, 1550.0)
    assert beta2 == pytest.approx(-2.168e-26, rel=1e-3)  # SMF at 1550 nm: -21.7 ps^2/km
    length = 50e3
    out = fiber.propagate_linear(pulse, fs, length, 0.0, beta2)

    def rms_width(x):
        p = np.abs(x) ** 2
        mean = np.sum(t * p) / np.sum(p)
        return math.sqrt(np.sum((t - mean) ** 2 * p) / np.sum(p))

    expected = rms_width(pulse) * math.sqrt(1 + (beta2 * length / t0**2) ** 2)
    assert rms_width(out) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("length_km", [80.0, 1000.0])
def test_cd_compensation_restores_the_transmitted_symbols(store, length_km):
    tx_cfg = TxConfig(modulation="16qam", n_symbols=4096)
    ch = ChannelConfig(ebn0_db=None, length_km=length_km, alpha_db_per_km=0.2)
    res = _run_link(store, tx=tx_cfg, channel=ch)
    np.testing.assert_allclose(res["rx"], res["tx.symbols"], atol=1e-9)
    uncompensated = _run_link(store, tx=tx_cfg, channel=ch, rx=RxConfig(cd_compensation=False))
    assert uncompensated["metrics"]["evm"] > 0.3
    assert uncompensated["metrics"]["n_symbol_errors"] > 100


def test_blind_normalisation_recovers_qpsk_up_to_a_quarter_turn():
    out = _field(n_symbols=4096, modulation="qpsk")
    info = {**out["info"], "length_km": 0.0, "beta2_s2_per_m": 0.0}
    rotated = out["waveform"] * 3e-2 * np.exp(1j * 0.3)
    got = rx.func(RxConfig(normalisation="blind"), rotated, info)
    quarter = [np.abs(got * 1j**q - out["symbols"]).max() for q in range(4)]
    assert min(quarter) < 1e-9
