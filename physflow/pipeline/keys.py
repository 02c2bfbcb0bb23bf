"""Cache keys: a Merkle hash over everything a node's result depends on (DESIGN idea 3)."""

from __future__ import annotations

from collections.abc import Mapping

import blake3

from .hashing import DIGEST_PREFIX, digest_bytes_of


def framed(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(8, "little") + data


_NO_RNG = framed("no-rng")


def key_prefix(fingerprint: str, config_digest: str) -> bytes:
    """The part of a key that does not depend on inputs (computed once per planned node)."""
    return framed("physflow.key.v1") + framed(fingerprint) + framed(config_digest)


def cache_key_with_prefix(
    prefix: bytes, input_digests: Mapping[str, str], seed_token: str | None
) -> str:
    """Same value as :func:`cache_key`; the hot path of every cached run."""
    parts = [prefix]
    for name in sorted(input_digests) if len(input_digests) > 1 else input_digests:
        parts.append(framed(name))
        parts.append(framed(input_digests[name]))
    parts.append(framed(seed_token) if seed_token else _NO_RNG)
    return DIGEST_PREFIX + blake3.blake3(b"".join(parts)).hexdigest()


def cache_key(
    fingerprint: str,
    config_digest: str,
    input_digests: Mapping[str, str],
    seed_token: str | None,
) -> str:
    """The node id is deliberately absent: identical work under another name is shared."""
    return cache_key_with_prefix(key_prefix(fingerprint, config_digest), input_digests, seed_token)


def combined_outputs_digest(digests: Mapping[str, str]) -> str:
    """Digest standing for all outputs of a node when a downstream input takes them all."""
    parts = ["physflow.outputs.v1"]
    for name in sorted(digests):
        parts.extend((name, digests[name]))
    return digest_bytes_of(*parts)
