"""configs/optical_link.yaml and configs/optical_ber_scan.yaml, loaded and run as users do."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import physflow as pf

ROOT = Path(__file__).resolve().parents[3]
LINK = ROOT / "configs" / "optical_link.yaml"
SCAN = ROOT / "configs" / "optical_ber_scan.yaml"

binom = pytest.importorskip("scipy.stats").binom
spec = pytest.importorskip("physflow.pipeline.spec", reason="spec loader not available")


def test_link_config_runs_and_is_free_the_second_time(store):
    p = pf.load_spec(LINK)
    assert [n.stage.name.split(":")[-1] for n in p.nodes.values()] == [
        "tx",
        "channel",
        "rx",
        "metrics",
    ]
    first = p.run(store=store).raise_on_failure()
    assert sorted(first.misses) == ["channel", "metrics", "rx", "tx"]
    m = first["metrics"]
    ebn0 = p.nodes["channel"].config.ebn0_db
    assert m["ber_theory"] == pytest.approx(0.5 * math.erfc(math.sqrt(10 ** (ebn0 / 10))))
    # weak Kerr effect at 0 dBm: the link stays at the AWGN limit (99.9% binomial interval)
    lo, hi = (
        binom.ppf(0.0005, m["n_bits"], m["ber_theory"]),
        binom.ppf(0.9995, m["n_bits"], m["ber_theory"]),
    )
    assert lo <= m["n_bit_errors"] <= hi
    again = pf.load_spec(LINK).run(store=store)
    assert again.misses == [] and len(again.hits) == 4
    assert again.digest("metrics.ber") == first.digest("metrics.ber")


def test_bad_values_in_yaml_are_rejected_with_file_line_and_choices(tmp_path):
    text = LINK.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("modulation: qpsk ", "modulation: 8psk "))
    with pytest.raises(pf.SpecError) as err:
        pf.load_spec(bad)
    message = str(err.value)
    assert "bad.yaml:" in message and "'tx'" in message and "modulation" in message
    assert "qpsk" in message and "16qam" in message
    bad.write_text(text.replace("step_km: 2.0", "step_km: -1.0"))
    with pytest.raises(pf.SpecError, match="step_km"):
        pf.load_spec(bad)


def test_ber_scan_reuses_the_transmitter_and_reruns_for_free(store):
    from physflow.pipeline.spec import load_spec_with_scan

    pipeline, scan = load_spec_with_scan(SCAN)
    assert scan is not None and set(scan.axes) == {"tx.modulation", "channel.ebn0_db"}
    started: list[str] = []

    def progress(event):
        if event.kind == "started":
            started.append(event.node_id)

    ds = pipeline.scan(scan.axes, collect=scan.collect, store=store, progress=progress)
    n_ebn0 = len(scan.axes["channel.ebn0_db"])
    # counted executions: one transmitter per modulation format, every Eb/N0 point reuses it
    assert started.count("tx") == 2
    assert started.count("channel") == started.count("metrics") == 2 * n_ebn0
    manifest = json.loads(Path(ds.attrs["manifest_path"]).read_text())
    tx_records = {pt["values"]["tx.modulation"]: set() for pt in manifest["points"]}
    for pt in manifest["points"]:
        tx_records[pt["values"]["tx.modulation"]].add(pt["nodes"]["tx"])
    assert all(len(ids) == 1 for ids in tx_records.values())
    # measured BER against theory where the interval is meaningful
    for modulation in ("qpsk", "16qam"):
        sel = ds.sel({"tx.modulation": modulation})
        n_bits = 65536 * (2 if modulation == "qpsk" else 4)
        for ber, theory in zip(sel["metrics.ber"].values, sel["metrics.ber_theory"].values):
            if theory * n_bits < 50:
                continue
            k = round(ber * n_bits)
            assert binom.ppf(0.0005, n_bits, theory) <= k <= binom.ppf(0.9995, n_bits, theory)
    assert (ds["metrics.ber"].sel({"tx.modulation": "qpsk"}).values[:4] > 0).all()

    started.clear()
    again = pipeline.scan(scan.axes, collect=scan.collect, store=store, progress=progress)
    assert started == []  # the re-run executes nothing
    assert again.attrs["misses"] == 0
    assert (again["metrics.ber"].values == ds["metrics.ber"].values).all()


def test_ber_plot_is_drawn_from_the_scan(store, tmp_path):
    pytest.importorskip("matplotlib")
    from physflow.pipeline.spec import load_spec_with_scan
    from physflow.stages.optical.plot import plot_ber_scan

    pipeline, scan = load_spec_with_scan(SCAN)
    axes = {"tx.modulation": ["qpsk", "16qam"], "channel.ebn0_db": [0.0, 6.0]}
    ds = pipeline.with_values({"tx.n_symbols": 1024}).scan(axes, collect=scan.collect, store=store)
    out = plot_ber_scan(ds, tmp_path / "ber.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_link_on_worker_processes_stores_the_serial_bytes(tmp_path):
    """Same spec + seed: bit-identical outputs on real worker processes and serially."""
    p = pf.load_spec(LINK, overrides={"tx.n_symbols": 4096})
    serial = p.run(store=pf.Store(tmp_path / "serial")).raise_on_failure()
    procs = p.run(store=pf.Store(tmp_path / "procs"), executor="processes", workers=2)
    procs.raise_on_failure()
    assert sorted(procs.misses) == ["channel", "metrics", "rx", "tx"]
    for ref in ("tx.bits", "tx.waveform", "channel.waveform", "rx", "metrics.ber"):
        assert procs.digest(ref) == serial.digest(ref), ref
