"""Train a small torch demapper on simulated optical samples; compare with the optimal detector.

The dataset is configs/optical_dataset.yaml: blocks of received QPSK / 16-QAM symbols at a
random Eb/N0 per block, with the transmitted bits (generated, cached and split by physflow.ml).
A 3-layer MLP maps (Re, Im, modulation) of each received symbol to the transmitted symbol's bit
label. On the test split its symbol error rate is compared with the minimum-distance detector
(optimal for equiprobable symbols in AWGN) on the same symbols.

    python examples/ml_demapper.py                       # store ./.physflow, 2000 samples
    python examples/ml_demapper.py --store /tmp/s --samples 1200 --epochs 3

Prints one JSON line: {"ser_model": ..., "ser_min_distance": ..., "relative_gap": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import physflow as pf
from physflow.stages.optical import modulation as mod

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "optical_dataset.yaml"
FORMATS = ("qpsk", "16qam")
CONSTELLATIONS = {m: mod.constellation(m) for m in FORMATS}


def symbol_rows(batch: dict) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, list[str]]:
    """Per received symbol: features (Re, Im, is_16qam), bit label, the complex sample and its
    block's modulation."""
    feats, labels, received, formats = [], [], [], []
    for x, bits, m in zip(batch["x"], batch["y"], batch["tx.modulation"]):
        x = np.asarray(x)
        k = mod.bits_per_symbol(str(m))
        weights = 1 << np.arange(k - 1, -1, -1)
        labels.append(np.asarray(bits).reshape(-1, k) @ weights)
        flag = np.full(x.size, float(m == "16qam"))
        feats.append(np.stack([x.real, x.imag, flag], axis=1))
        received.append(x)
        formats += [str(m)] * x.size
    return (
        torch.from_numpy(np.concatenate(feats)).float(),
        torch.from_numpy(np.concatenate(labels)).long(),
        np.concatenate(received),
        formats,
    )


def model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(3, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 16),
    )


def masked_logits(net: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """QPSK has 4 labels: its other 12 classes are impossible."""
    logits = net(feats)
    qpsk = feats[:, 2] < 0.5
    logits[qpsk, 4:] = -torch.inf
    return logits


def train(ds: pf.ml.Dataset, epochs: int, batch_size: int = 16) -> torch.nn.Module:
    torch.manual_seed(0)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    tds = ds.split("train").torch(shuffle=True, seed=0, batch_size=batch_size)
    loader = tds.loader(num_workers=0)
    for epoch in range(epochs):
        tds.set_epoch(epoch)
        total = 0.0
        for batch in loader:
            feats, labels, _, _ = symbol_rows(batch)
            loss = torch.nn.functional.cross_entropy(masked_logits(net, feats), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch {epoch}: mean loss {total / max(1, len(loader)):.4f}", file=sys.stderr)
    return net


def min_distance(received: np.ndarray, formats: list[str]) -> np.ndarray:
    """Index of the nearest constellation point (the optimal detector here)."""
    out = np.empty(received.size, dtype=np.int64)
    fmt = np.asarray(formats)
    for m, points in CONSTELLATIONS.items():
        sel = fmt == m
        out[sel] = np.argmin(np.abs(received[sel, None] - points[None, :]), axis=1)
    return out


def evaluate(net: torch.nn.Module, ds: pf.ml.Dataset) -> dict[str, float]:
    errors_model = errors_md = n = 0
    with torch.no_grad():
        for batch in ds.split("test").iter_batches(64):
            feats, labels, received, formats = symbol_rows(batch)
            predicted = masked_logits(net, feats).argmax(dim=1).numpy()
            truth = labels.numpy()
            errors_model += int(np.sum(predicted != truth))
            errors_md += int(np.sum(min_distance(received, formats) != truth))
            n += truth.size
    ser_model, ser_md = errors_model / n, errors_md / n
    return {
        "symbols": n,
        "ser_model": ser_model,
        "ser_min_distance": ser_md,
        "relative_gap": (ser_model - ser_md) / ser_md,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=None, help="physflow store (default ./.physflow)")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny model: threads only contend with other processes
    t0 = time.perf_counter()
    ds = pf.ml.generate(CONFIG, samples=args.samples, store=args.store, progress=False)
    print(f"dataset: {ds} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    net = train(ds, args.epochs)
    result = evaluate(net, ds)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(result))
    return 0 if abs(result["relative_gap"]) <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
