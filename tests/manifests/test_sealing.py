"""Manifest seals: every run and scan manifest carries a blake3 checksum of its own bytes, so a
damaged or edited manifest is refused by every reader (API and CLI) instead of shown."""

from __future__ import annotations

import json
from pathlib import Path

import blake3
import pytest

import physflow as pf
from physflow.cli.main import main
from physflow.manifests.reader import ManifestError
from physflow.manifests.scan_manifest import load_scan_manifest
from physflow.manifests.sealing import UNSEALED, check_seal

from .manifest_stages import WaveConfig, mean_power, wave


def _pipeline() -> pf.Pipeline:
    p = pf.Pipeline("sealed", seed=3)
    p.add("wave", wave, WaveConfig(n=1000))
    p.add("power", mean_power, signal="wave.signal")
    return p


def _edit_power(path: Path) -> float:
    """Change one digit of the stored mean power in the manifest; returns the true value."""
    doc = json.loads(path.read_text())
    power = next(n for n in doc["nodes"] if n["id"] == "power")["outputs"]["value"]["value"]
    shown = repr(power)
    text = path.read_text()
    assert shown in text
    digit = next(i for i, c in enumerate(shown) if c.isdigit() and c != "0")
    path.write_text(text.replace(shown, shown[:digit] + "7" + shown[digit + 1 :], 1))
    return power


def test_the_seal_is_the_blake3_of_the_file_with_the_digest_zeroed(tmp_path):
    res = _pipeline().run(store=tmp_path / "s")
    data = Path(res.manifest_path).read_bytes()
    stored = json.loads(data)["checksum"]
    zeroed = data.replace(stored.encode(), UNSEALED.encode(), 1)
    assert blake3.blake3(zeroed).hexdigest() == stored  # independent recomputation
    assert check_seal(data) is True
    assert pf.load_manifest(res.manifest_path).metrics("power")["value"] == res["power"]


def test_an_edited_run_manifest_is_refused_everywhere(tmp_path, capsys):
    store = tmp_path / "s"
    res = _pipeline().run(store=store)
    path = Path(res.manifest_path)
    true_power = _edit_power(path)
    with pytest.raises(ManifestError, match="checksum"):
        pf.load_manifest(path)
    for argv in (["show", str(path)], ["show", "--json", str(path)], ["explain", str(path)]):
        code = main([*argv, "--store", str(store)])
        err = capsys.readouterr().err
        assert code != 0, argv
        assert "checksum" in err, (argv, err)
        assert "Traceback" not in err
    # the values themselves are intact: a re-run serves them from records and objects
    again = _pipeline().run(store=store)
    assert again.misses == [] and again["power"] == true_power


def test_an_edited_scan_manifest_is_refused(tmp_path, capsys):
    store = tmp_path / "s"
    ds = _pipeline().scan({"wave.amplitude": [1.0, 2.0]}, collect=["power"], store=store)
    path = Path(ds.attrs["manifest_path"])
    assert load_scan_manifest(path).scan_id
    text = path.read_text()
    path.write_text(text.replace('"amplitude":2.0', '"amplitude":3.0', 1))
    assert path.read_text() != text
    with pytest.raises(ManifestError, match="checksum"):
        load_scan_manifest(path)
    assert main(["show", str(path), "--store", str(store)]) != 0
    assert "checksum" in capsys.readouterr().err


def test_a_manifest_written_before_seals_is_still_read(tmp_path):
    res = _pipeline().run(store=tmp_path / "s")
    path = Path(res.manifest_path)
    doc = json.loads(path.read_text())
    del doc["checksum"]
    path.write_text(json.dumps(doc))
    assert check_seal(path.read_bytes()) is False
    assert pf.load_manifest(path).metrics("power")["value"] == res["power"]
