"""The OptiCommPy backend cross-checked against the numpy path, and its RNG isolation.

Skipped when OptiCommPy (``pip install physflow[optical]``) is not installed.
"""

from __future__ import annotations

import importlib.metadata
import math
import warnings

import numpy as np
import pytest

pytest.importorskip("optic", reason="OptiCommPy not installed (pip install physflow[optical])")

from numba import _helperlib

from physflow.stages.optical import (
    ChannelConfig,
    MetricsConfig,
    TxConfig,
    fiber,
    link_pipeline,
    opticommpy_backend,
)
from physflow.stages.optical import modulation as mod

_installed = importlib.metadata.version("opticommpy")
if _installed != opticommpy_backend.SUPPORTED_VERSION:
    pytest.skip(
        f"OptiCommPy {_installed} installed; the backend is validated against "
        f"{opticommpy_backend.SUPPORTED_VERSION}",
        allow_module_level=True,
    )


def _numba_state():
    return _helperlib.rnd_get_state(_helperlib.rnd_get_np_state_ptr())


def _same_np_state(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


@pytest.mark.parametrize(("modulation", "order"), [("qpsk", 4), ("16qam", 16)])
def test_numpy_mapping_equals_opticommpy_modulate_gray(modulation, order):
    from optic.comm.modulation import grayMapping, modulateGray

    bits = np.random.default_rng(1).integers(0, 2, 4096, dtype=np.uint8)
    energy = np.mean(np.abs(grayMapping(order, "qam")) ** 2)
    theirs = modulateGray(bits, order, "qam") / np.sqrt(energy)
    np.testing.assert_allclose(mod.map_bits(bits, modulation), theirs, atol=1e-12)


def test_theory_matches_opticommpy_theory_ber():
    for ebn0 in [2.0, 6.0, 10.0]:
        # QPSK: both exact. 16-QAM: OptiCommPy's nearest-neighbour approximation, close at high SNR
        assert mod.ber_theory("qpsk", ebn0) == pytest.approx(
            opticommpy_backend.theory_ber("qpsk", ebn0), rel=1e-12
        )
    assert mod.ber_theory("16qam", 12.0) == pytest.approx(
        opticommpy_backend.theory_ber("16qam", 12.0), rel=1e-3
    )


def _links(store, modulation, ebn0, *, tx_backend, metrics_backend, seed=5, n_symbols=2**14):
    p = link_pipeline(
        seed=seed,
        tx_config=TxConfig(modulation=modulation, n_symbols=n_symbols, backend=tx_backend),
        channel_config=ChannelConfig(ebn0_db=ebn0, length_km=80.0),
        metrics_config=MetricsConfig(backend=metrics_backend),
    )
    return p.run(store=store).raise_on_failure()


@pytest.mark.parametrize("modulation", ["qpsk", "16qam"])
def test_opticommpy_transmitter_back_to_back_is_error_free(store, modulation):
    res = _links(store, modulation, None, tx_backend="opticommpy", metrics_backend="numpy")
    m = res["metrics"]
    assert m["n_bit_errors"] == 0
    assert m["evm"] < 1e-2  # only the truncated RRC filter's residual ISI
    bits, symbols = res["tx.bits"], res["tx.symbols"]
    assert set(np.unique(bits)) <= {0, 1} and bits.size == 2**14 * mod.bits_per_symbol(modulation)
    np.testing.assert_allclose(symbols, mod.map_bits(bits, modulation), atol=1e-12)
    waveform = res["tx.waveform"]
    assert np.mean(np.abs(waveform) ** 2) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(("modulation", "ebn0"), [("qpsk", 5.0), ("16qam", 9.0)])
def test_opticommpy_metrics_agree_with_numpy_metrics(store, modulation, ebn0):
    ours = _links(store, modulation, ebn0, tx_backend="numpy", metrics_backend="numpy")["metrics"]
    theirs = _links(store, modulation, ebn0, tx_backend="numpy", metrics_backend="opticommpy")[
        "metrics"
    ]
    n_bits = ours["n_bits"]
    # same received symbols: decisions differ at most for a few points on a decision boundary
    assert abs(theirs["n_bit_errors"] - ours["n_bit_errors"]) <= max(3, 0.01 * ours["n_bit_errors"])
    assert theirs["ber"] == pytest.approx(theirs["n_bit_errors"] / n_bits)
    assert abs(theirs["ser"] - ours["ser"]) <= 0.01 * ours["ser"] + 3 / (n_bits / 4)
    assert theirs["evm"] == pytest.approx(ours["evm"], rel=1e-2)
    # ours is the unbiased data-aided estimate of Es/N0; fastBERcalc divides by mean(tx/rx)
    # and re-normalises the noisy power, which biases its estimate upwards at low SNR
    es_n0 = ebn0 + 10 * math.log10(mod.bits_per_symbol(modulation))
    assert ours["snr_db"] == pytest.approx(es_n0, abs=0.1)
    assert es_n0 - 0.1 < theirs["snr_db"] < es_n0 + 0.75
    assert theirs["ber_theory"] == ours["ber_theory"]


def test_opticommpy_transmitter_ber_matches_theory(store):
    res = _links(
        store, "qpsk", 4.0, tx_backend="opticommpy", metrics_backend="opticommpy", n_symbols=2**17
    )
    m = res["metrics"]
    theory = 0.5 * math.erfc(math.sqrt(10**0.4))
    from scipy.stats import binom

    lo, hi = binom.ppf(0.005, m["n_bits"], theory), binom.ppf(0.995, m["n_bits"], theory)
    assert lo <= m["n_bit_errors"] <= hi


def test_global_rng_state_untouched_and_results_deterministic(tmp_path):
    import physflow as pf

    np.random.seed(1234)
    before_np, before_nb = np.random.get_state(), _numba_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # physflow warns if a stage changed global state
        a = _links(
            pf.Store(tmp_path / "a"),
            "16qam",
            8.0,
            tx_backend="opticommpy",
            metrics_backend="opticommpy",
        )
        b = _links(
            pf.Store(tmp_path / "b"),
            "16qam",
            8.0,
            tx_backend="opticommpy",
            metrics_backend="opticommpy",
        )
    assert _same_np_state(np.random.get_state(), before_np)
    assert _numba_state() == before_nb
    assert a.misses == b.misses == ["tx", "channel", "rx", "metrics"]
    for ref in ("tx.bits", "tx.waveform", "metrics.ber"):
        assert a.digest(ref) == b.digest(ref)
    # another run seed gives other bits: the seed comes from the stage's rng, not a constant
    c = _links(
        pf.Store(tmp_path / "a"),
        "16qam",
        8.0,
        tx_backend="opticommpy",
        metrics_backend="opticommpy",
        seed=6,
    )
    assert not np.array_equal(c["tx.bits"], a["tx.bits"])
    assert _same_np_state(np.random.get_state(), before_np)


def test_isolation_restores_state_on_error_and_is_thread_safe():
    from concurrent.futures import ThreadPoolExecutor

    before = np.random.get_state()
    with pytest.raises(RuntimeError), opticommpy_backend.isolated(7):
        np.random.random(10)
        raise RuntimeError("boom")
    assert _same_np_state(np.random.get_state(), before)

    def draw(seed):
        out = []
        for _ in range(20):
            with opticommpy_backend.isolated(seed):
                out.append(np.random.randint(0, 1 << 30, 8))
        return np.concatenate(out)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(draw, [1, 2, 1, 2]))
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[3])
    assert not np.array_equal(results[0], results[1])
    assert _same_np_state(np.random.get_state(), before)


def test_split_step_matches_opticommpy_ssfm():
    from optic.models.channels import ssfm
    from optic.utils import parameters

    rng = np.random.default_rng(3)
    symbols = mod.map_bits(rng.integers(0, 2, 2 * 2048, dtype=np.uint8), "qpsk")
    from physflow.stages.optical import pulse

    fs = 32e9 * 4
    field = pulse.shape(symbols, 4, 0.1) * math.sqrt(10e-3)  # 10 dBm: strong Kerr effect
    param = parameters()
    param.Ltotal, param.Lspan, param.hz = 80.0, 80.0, 0.1
    param.alpha, param.D, param.gamma = 0.0, 17.0, 1.3
    param.Fc, param.Fs, param.amp, param.prgsBar = 299792458.0 / 1550e-9, fs, None, False
    before = np.random.get_state()
    with opticommpy_backend.isolated(0):
        theirs = ssfm(field.copy(), param)
    assert _same_np_state(np.random.get_state(), before)
    ours = fiber.propagate_ssfm(
        field, fs, 80e3, 0.0, fiber.beta2_s2_per_m(17.0, 1550.0), 1.3e-3, 0.1e3
    )
    scale = np.abs(ours).max()
    assert np.abs(ours - theirs).max() < 1e-6 * scale
    linear = fiber.propagate_linear(field, fs, 80e3, 0.0, fiber.beta2_s2_per_m(17.0, 1550.0))
    assert np.abs(ours - linear).max() > 1e-2 * scale


def test_threads_give_the_serial_results(tmp_path):
    """The isolation lock (shared with the runner's global-state check) makes concurrent
    OptiCommPy stages safe: a threaded scan over both formats gives the serial scan's results
    and leaves the global state alone. (Worker processes would each pay OptiCommPy's numba
    JIT, ~10 s; the numpy link is checked on processes in test_configs.py.)"""
    import physflow as pf

    p = link_pipeline(
        seed=9,
        tx_config=TxConfig(n_symbols=2**12, backend="opticommpy"),
        channel_config=ChannelConfig(ebn0_db=6.0, length_km=10.0),
        metrics_config=MetricsConfig(backend="opticommpy"),
    )
    axes = {"tx.modulation": ["qpsk", "16qam"], "channel.ebn0_db": [4.0, 8.0]}
    collect = ["metrics.ber", "metrics.evm"]
    before = np.random.get_state()
    results = {
        executor: p.scan(
            axes, collect=collect, store=pf.Store(tmp_path / executor), executor=executor, workers=2
        )
        for executor in ("serial", "threads")
    }
    assert _same_np_state(np.random.get_state(), before)
    for var in collect:
        np.testing.assert_array_equal(results["threads"][var].values, results["serial"][var].values)


def test_an_unvalidated_opticommpy_version_is_refused(monkeypatch):
    monkeypatch.setattr(opticommpy_backend, "SUPPORTED_VERSION", "9.9.9")
    with pytest.raises(ImportError, match=r"validated against OptiCommPy 9\.9\.9.*pip install"):
        opticommpy_backend.require()
