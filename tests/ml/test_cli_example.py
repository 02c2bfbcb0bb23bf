"""The command line, the optical dataset config, the demapper example, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physflow as pf
from physflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "optical_dataset.yaml"


def test_optical_dataset_config(tmp_path, capsys):
    store = tmp_path / "store"
    code = main(["dataset", "generate", str(CONFIG), "--samples", "300", "--store", str(store),
                 "--executor", "processes", "--workers", "2"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "300 samples in 2 shards: 300 computed" in out.out
    assert "[2/2] shard" in out.err and "samples/s" in out.err  # plain progress off a terminal
    ds = pf.ml.open_dataset("optical_dataset", store=store)
    fields = ds.card.fields
    assert fields["x"].dtype == "<c16" and fields["x"].shape == [256]
    assert fields["y"].ragged and fields["y"].dtype == "|u1"
    from physflow.stages.optical import modulation as mod

    for i in range(0, 300, 37):
        sample = ds[i]
        m = str(sample["tx.modulation"])
        assert 0.0 <= sample["channel.ebn0_db"] < 12.0
        bits = sample["y"]
        assert bits.size == 256 * mod.bits_per_symbol(m)
        # the received symbols are the transmitted ones plus noise of the drawn Eb/N0
        sent = mod.map_bits(bits, m)
        es_n0 = 10 ** (sample["channel.ebn0_db"] / 10) * mod.bits_per_symbol(m)
        noise = np.mean(np.abs(sample["x"] - sent) ** 2)
        assert 0.6 < noise * es_n0 < 1.6, (i, noise * es_n0)
    # a second run over the CLI computes nothing
    assert main(["dataset", "generate", str(CONFIG), "--samples", "300", "--store", str(store),
                 "-q"]) == 0  # fmt: skip
    assert "0 computed, 300 reused" in capsys.readouterr().out


def test_set_and_name_options(tmp_path, capsys):
    store = tmp_path / "store"
    code = main(["dataset", "generate", str(CONFIG), "--samples", "20", "--name", "tiny",
                 "--set", "tx.n_symbols=64", "--shard-size", "8", "--seed", "3",
                 "--store", str(store), "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ds = pf.ml.open_dataset("tiny", store=store)
    assert ds.card.fields["x"].shape == [64] and ds.card.seed == 3 and len(ds.card.shards) == 3
    assert main(["dataset", "generate", str(CONFIG), "--executor", "gpu", "--store",
                 str(store)]) == 2  # fmt: skip
    assert "unknown executor" in capsys.readouterr().err


def test_sample_failure_exits_1_and_keeps_finished_shards(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: fails\nstages:\n  tx: {stage: optical.tx, config: {n_symbols: 8}}\n"
        "  rx: {stage: optical.rx, inputs: {waveform: tx.waveform, info: tx.info}}\n"
        "dataset:\n  samples: 6\n  shard_size: 2\n  outputs: {x: rx}\n"
    )  # rx with pilots and no reference fails in every sample
    code = main(["dataset", "generate", str(spec), "--store", str(tmp_path / "s"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "sample 0" in err and "node 'rx'" in err and "reference" in err


def test_import_physflow_and_generate_do_not_import_torch(tmp_path):
    code = (
        "import sys, physflow as pf\n"
        "from physflow.stages.demo import tone, ToneConfig\n"
        "p = pf.Pipeline('t'); p.add('tone', tone, ToneConfig(n_samples=8))\n"
        f"ds = pf.ml.generate(p, samples=3, outputs={{'x': 'tone'}}, store={str(tmp_path)!r})\n"
        "b = next(ds.iter_batches(2))\n"
        "print(sorted(m for m in ('torch', 'xarray', 'dask') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.slow
def test_demapper_example_matches_the_optimal_detector(tmp_path):
    pytest.importorskip("torch")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ml_demapper.py"), "--store",
         str(tmp_path / "s"), "--samples", "1000", "--epochs", "4"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["symbols"] >= 20_000
    assert 0.01 < result["ser_min_distance"] < 0.5
    assert abs(result["relative_gap"]) <= 0.10
