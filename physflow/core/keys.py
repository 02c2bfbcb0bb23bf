"""Cache keys: a Merkle hash over everything a node's result depends on (DESIGN idea 3).

key = merkle("physflow.key.v1", stage fingerprint, config digest, (input name, input digest)
for each input sorted by name, seed token or "no-rng"). The node id is deliberately absent, so
identical work under another name (another node, pipeline or scan point) is shared; inputs enter
by the digest of their *value*, so an upstream that recomputes the same bytes leaves its
downstream a hit (early cut-off).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from .framing import frame_text, merkle, merkle_framed

KEY_KIND = "physflow.key.v1"
OUTPUTS_KIND = "physflow.outputs.v1"
_NO_RNG = frame_text("no-rng")


@lru_cache(maxsize=1 << 16)
def key_prefix(fingerprint: str, config_digest: str) -> bytes:
    """The framed parts of a key that do not depend on inputs (a pure function of two strings,
    remembered: a script that rebuilds its Pipeline asks again for every node)."""
    return frame_text(KEY_KIND) + frame_text(fingerprint) + frame_text(config_digest)


def cache_key_with_prefix(
    prefix: bytes, input_digests: Mapping[str, str], seed_token: str | None
) -> str:
    """The cache key given :func:`key_prefix` (the hot path of every cached run)."""
    parts = [prefix]
    for name in sorted(input_digests) if len(input_digests) > 1 else input_digests:
        # frame_text inlined (once per input of every node of every run)
        n, d = name.encode(), input_digests[name].encode()
        parts += (len(n).to_bytes(8, "little"), n, len(d).to_bytes(8, "little"), d)
    parts.append(frame_text(seed_token) if seed_token else _NO_RNG)
    return merkle_framed(b"".join(parts))


def cache_key(
    fingerprint: str,
    config_digest: str,
    input_digests: Mapping[str, str],
    seed_token: str | None,
) -> str:
    return cache_key_with_prefix(key_prefix(fingerprint, config_digest), input_digests, seed_token)


def combined_outputs_digest(digests: Mapping[str, str]) -> str:
    """Digest standing for all outputs of a node when a downstream input takes them all."""
    parts: list[str] = []
    for name in sorted(digests):
        parts.extend((name, digests[name]))
    return merkle(OUTPUTS_KIND, *parts)
