"""Neuro stage pack: decoding position from place-cell spikes with a chunked HMM.

``neuro.simulate`` -> ``neuro.encode`` -> ``neuro.transition`` / ``neuro.likelihood`` ->
``neuro.filter`` -> ``neuro.smoother`` -> ``neuro.summary`` (see docs/neuro.md). The (T, S)
arrays are streamed chunk by chunk, so memory stays at O(chunk) for any recording length; jax
is imported only by ``backend: jax``, xarray only by :mod:`.dataset`.
"""

from __future__ import annotations

from typing import Any

from .decode import Checkpoints, FilterConfig, SmootherConfig, hmm_filter, hmm_smoother
from .encode import EncodeConfig, Encoding, encode
from .likelihood import LikelihoodConfig, likelihood
from .posterior import UINT16_SCALE, decode_posterior, encode_posterior
from .simulate import SimulateConfig, TrackInfo, simulate
from .summary import SummaryConfig, summary
from .transition import TransitionConfig, transition


def decode_pipeline(
    name: str = "neuro_decode",
    seed: int = 1,
    *,
    simulate_config: SimulateConfig | None = None,
    encode_config: EncodeConfig | None = None,
    transition_config: TransitionConfig | None = None,
    likelihood_config: LikelihoodConfig | None = None,
    filter_config: FilterConfig | None = None,
    smoother_config: SmootherConfig | None = None,
    summary_config: SummaryConfig | None = None,
) -> Any:
    """The seven-stage decoder as a :class:`physflow.Pipeline` (configs/neuro_decode.yaml)."""
    import physflow as pf

    p = pf.Pipeline(name, seed=seed)
    p.add("simulate", simulate, simulate_config or SimulateConfig())
    p.add(
        "encode",
        encode,
        encode_config or EncodeConfig(),
        position="simulate.position",
        spikes="simulate.spikes",
        track="simulate.track",
    )
    p.add("transition", transition, transition_config or TransitionConfig(), encoding="encode")
    p.add(
        "likelihood",
        likelihood,
        likelihood_config or LikelihoodConfig(),
        spikes="simulate.spikes",
        encoding="encode",
    )
    p.add(
        "filter",
        hmm_filter,
        filter_config or FilterConfig(),
        loglik="likelihood",
        transition="transition",
    )
    p.add(
        "smoother",
        hmm_smoother,
        smoother_config or SmootherConfig(),
        loglik="likelihood",
        transition="transition",
        checkpoints="filter.checkpoints",
        causal="filter.causal",
    )
    p.add(
        "summary",
        summary,
        summary_config or SummaryConfig(),
        posterior="smoother",
        position="simulate.position",
        encoding="encode",
    )
    return p


__all__ = [
    "UINT16_SCALE",
    "Checkpoints",
    "EncodeConfig",
    "Encoding",
    "FilterConfig",
    "LikelihoodConfig",
    "SimulateConfig",
    "SmootherConfig",
    "SummaryConfig",
    "TrackInfo",
    "TransitionConfig",
    "decode_pipeline",
    "decode_posterior",
    "encode",
    "encode_posterior",
    "hmm_filter",
    "hmm_smoother",
    "likelihood",
    "simulate",
    "summary",
    "transition",
]
