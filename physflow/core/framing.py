"""The one Merkle framing of physflow: every combined digest is blake3 over length-prefixed parts.

Cache keys, combined-output digests, plan digests, stage fingerprints, memo keys and spec digests
all go through :func:`merkle`, as redun's ``hash_struct(["Kind", ...])`` does: a kind string
first (so digests of different kinds never coincide), then each part as an 8-byte little-endian
length followed by its bytes (so no two part lists share an encoding).

``HASH_FORMAT`` versions the whole encoding (this framing and the value encoding of
:mod:`.hashing`). Changing either changes every digest and silently invalidates every user's
cache: tests/core/test_golden_digests.py pins digests of a fixed corpus, and a deliberate change
must bump this number (the store records it) and re-pin them.
"""

from __future__ import annotations

import blake3

DIGEST_PREFIX = "b3:"
#: Version of the digest encoding; stores record it in store.json.
HASH_FORMAT = 1


def frame(data: bytes) -> bytes:
    """``data`` prefixed by its length (8 bytes, little-endian)."""
    return len(data).to_bytes(8, "little") + data


def frame_text(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(8, "little") + data


def frame_texts(*texts: str) -> bytes:
    """Several texts, each framed, in one call (the hot path of plan digests)."""
    parts: list[bytes] = []
    append = parts.append
    for text in texts:
        data = text.encode()
        append(len(data).to_bytes(8, "little"))
        append(data)
    return b"".join(parts)


def merkle(kind: str, *parts: str | bytes) -> str:
    """``"b3:" + hex`` of blake3 over the framed ``kind`` and ``parts`` (str as UTF-8)."""
    chunks = [frame(kind.encode())]
    for part in parts:
        chunks.append(frame(part.encode() if isinstance(part, str) else part))
    return DIGEST_PREFIX + blake3.blake3(b"".join(chunks)).hexdigest()


def merkle_framed(framed: bytes) -> str:
    """The digest of parts already framed with :func:`frame` (hot paths build them once)."""
    return DIGEST_PREFIX + blake3.blake3(framed).hexdigest()


def hex_of(d: str) -> str:
    """The hex part of a ``b3:`` digest (the form used in file names and database keys)."""
    return d[len(DIGEST_PREFIX) :] if d.startswith(DIGEST_PREFIX) else d
