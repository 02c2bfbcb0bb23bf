"""The BER-vs-Eb/N0 figure of the README: measured points over the closed-form curves.

    python -m physflow.stages.optical.plot [--spec configs/optical_ber_scan.yaml]
                                           [--store .physflow] [-o docs/img/optical_ber_scan.png]

Runs (or, on a warm store, just reads) the scan of the spec and draws it; matplotlib is
imported only here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .modulation import ber_theory

_LABELS = {"qpsk": "QPSK", "16qam": "16-QAM"}


def plot_ber_scan(ds: Any, output: str | Path, title: str | None = None) -> Path:
    """Draw ``metrics.ber`` per modulation against ``channel.ebn0_db`` with theory lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ebn0 = np.asarray(ds["channel.ebn0_db"].values, dtype=float)
    fine = np.linspace(ebn0.min(), ebn0.max(), 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for i, modulation in enumerate(ds["tx.modulation"].values.tolist()):
        color = f"C{i}"
        ber = np.asarray(ds["metrics.ber"].sel({"tx.modulation": modulation}).values, float)
        shown = ber > 0  # zero measured errors cannot be drawn on a log axis
        label = _LABELS.get(modulation, modulation)
        ax.semilogy(
            fine,
            [ber_theory(modulation, x) for x in fine],
            "-",
            color=color,
            label=f"{label} theory",
        )
        ax.semilogy(
            ebn0[shown], ber[shown], "o", color=color, mfc="none", label=f"{label} simulated"
        )
    ax.set_xlabel("Eb/N0 [dB]")
    ax.set_ylabel("bit error rate")
    ax.set_ylim(1e-5, 0.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or "BER vs Eb/N0")
    fig.tight_layout()
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    import physflow as pf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="configs/optical_ber_scan.yaml")
    parser.add_argument("--store", default=None)
    parser.add_argument("-o", "--output", default="docs/img/optical_ber_scan.png")
    args = parser.parse_args(argv)
    pipeline, scan = pf.load_spec_with_scan(args.spec)
    if scan is None:
        parser.error(f"{args.spec} has no scan: block")
    ds = pipeline.scan(
        scan.axes, collect=scan.collect, store=pf.Store(args.store) if args.store else None
    )
    title = scan.plot.title if scan.plot is not None else None
    print(plot_ber_scan(ds, args.output, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
