"""Manifest checksums: a run or scan manifest carries a blake3 digest of its own bytes.

Manifests hold small values themselves (scalar outputs, metrics) that ``physflow show``,
``Manifest.metrics()`` and harnesses read without touching the store, so a damaged manifest
(a flipped bit, a stray edit) must be refused, not displayed. The digest is the first key of
the JSON object (the encoder sorts keys; ``checksum`` sorts first) and is computed over the
file with the digest's 64 characters set to ``0``: sealing and checking need no re-encoding.
"""

from __future__ import annotations

import blake3

#: Placeholder the encoder writes; :func:`seal` replaces it with the digest.
UNSEALED = "0" * 64
_PREFIX = b'{"checksum":"'
_END = len(_PREFIX) + len(UNSEALED)


class ManifestError(ValueError):
    """A file is not a readable physflow manifest."""


class DamagedManifestError(ManifestError):
    """A manifest's bytes do not match its checksum."""


def seal(data: bytes) -> bytes:
    """``data`` (a manifest encoded with ``checksum=UNSEALED``) with its checksum filled in."""
    if not data.startswith(_PREFIX + UNSEALED.encode()):
        raise ValueError("manifest bytes must start with an unsealed checksum field")
    digest = blake3.blake3(data).hexdigest().encode()
    return _PREFIX + digest + data[_END:]


def check_seal(data: bytes) -> bool:
    """Raise :class:`DamagedManifestError` if ``data`` is sealed and damaged.

    Returns whether the manifest was sealed (manifests written before checksums existed are
    not, and are read as they are).
    """
    if not data.startswith(_PREFIX):
        return False
    stored = data[len(_PREFIX) : _END]
    unsealed = _PREFIX + UNSEALED.encode() + data[_END:]
    if blake3.blake3(unsealed).hexdigest().encode() != stored:
        raise DamagedManifestError(
            "the manifest does not match its checksum (damaged or edited); its values are not "
            "served. Re-run the pipeline to write a fresh one (cached results are reused)."
        )
    return True
