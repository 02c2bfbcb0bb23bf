"""Cache keys: a Merkle hash over everything a node's result depends on (DESIGN idea 3)."""

from __future__ import annotations

from collections.abc import Mapping

from .hashing import digest_bytes_of


def cache_key(
    fingerprint: str,
    config_digest: str,
    input_digests: Mapping[str, str],
    seed_token: str | None,
) -> str:
    """The node id is deliberately absent: identical work under another name is shared."""
    parts = ["physflow.key.v1", fingerprint, config_digest]
    for name in sorted(input_digests):
        parts.append(name)
        parts.append(input_digests[name])
    parts.append(seed_token or "no-rng")
    return digest_bytes_of(*parts)


def combined_outputs_digest(digests: Mapping[str, str]) -> str:
    """Digest standing for all outputs of a node when a downstream input takes them all."""
    parts = ["physflow.outputs.v1"]
    for name in sorted(digests):
        parts.extend((name, digests[name]))
    return digest_bytes_of(*parts)
