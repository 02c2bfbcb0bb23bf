"""Coherent optical link stage pack: ``optical.tx`` -> ``optical.channel`` -> ``optical.rx`` ->
``optical.metrics`` (see docs/optical.md). Pure numpy by default; ``backend: opticommpy`` uses the
optional OptiCommPy package for the transmitter and the metrics."""

from __future__ import annotations

from .evaluation import MetricsConfig, metrics
from .propagation import ChannelConfig, channel
from .receiver import RxConfig, rx
from .transmitter import TxConfig, tx


def link_pipeline(
    name: str = "optical_link",
    seed: int = 1,
    tx_config: TxConfig | None = None,
    channel_config: ChannelConfig | None = None,
    rx_config: RxConfig | None = None,
    metrics_config: MetricsConfig | None = None,
):
    """The four-stage link as a :class:`physflow.Pipeline` (what configs/optical_link.yaml says)."""
    import physflow as pf

    p = pf.Pipeline(name, seed=seed)
    p.add("tx", tx, tx_config or TxConfig())
    p.add(
        "channel",
        channel,
        channel_config or ChannelConfig(),
        waveform="tx.waveform",
        info="tx.info",
    )
    p.add(
        "rx",
        rx,
        rx_config or RxConfig(),
        waveform="channel.waveform",
        info="channel.info",
        reference="tx.symbols",
    )
    p.add(
        "metrics",
        metrics,
        metrics_config or MetricsConfig(),
        received="rx",
        bits="tx.bits",
        symbols="tx.symbols",
        info="channel.info",
    )
    return p


__all__ = [
    "ChannelConfig",
    "MetricsConfig",
    "RxConfig",
    "TxConfig",
    "channel",
    "link_pipeline",
    "metrics",
    "rx",
    "tx",
]
