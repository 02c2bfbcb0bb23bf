"""Records: what the action cache stores for one cache key, and plan records (msgpack, never
pickle), each followed by a blake3 checksum so a damaged record is a miss, never a wrong value.

A plan record (see :mod:`physflow.artifacts.action_cache`) holds, for one plan digest, every
node's key, input digests, action record and (encoded) manifest record as of the last complete
run of that plan.
"""

from __future__ import annotations

from typing import Any

import blake3
import msgspec


class OutputEntry(msgspec.Struct, frozen=True, omit_defaults=True, array_like=True):
    """One output of a node: its content digest and how to get the value back.

    ``tree`` is the value in physflow's tagged encoding (see :mod:`.inline`); values too large to
    inline appear in it as references to objects, listed again in ``objects`` so gc and verify
    need not decode trees.
    """

    digest: str
    tree: Any
    objects: tuple[str, ...] = ()
    type_name: str = ""
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    nbytes: int = 0
    unsafe: bool = False


class ActionRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str
    stage: str
    fingerprint: str
    outputs: dict[str, OutputEntry]
    created: float
    duration_s: float = 0.0
    node_id: str = ""

    @property
    def object_digests(self) -> set[str]:
        return {d for entry in self.outputs.values() for d in entry.objects}


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ActionRecord)
_CHECK_BYTES = 16


def with_checksum(payload: bytes) -> bytes:
    """``payload`` followed by a 16-byte blake3 checksum of it."""
    return payload + blake3.blake3(payload).digest(length=_CHECK_BYTES)


def checked_payload(data: bytes, what: str) -> bytes:
    """The payload of :func:`with_checksum` bytes; ``msgspec.DecodeError`` if damaged."""
    payload, check = data[:-_CHECK_BYTES], data[-_CHECK_BYTES:]
    if len(data) <= _CHECK_BYTES or blake3.blake3(payload).digest(length=_CHECK_BYTES) != check:
        raise msgspec.DecodeError(f"{what} checksum mismatch (damaged record)")
    return payload


def encode_record(record: ActionRecord) -> bytes:
    """msgpack of the record followed by a blake3 checksum of it.

    Small values live inside records; the checksum makes a damaged record (a flipped bit that
    still decodes) a miss instead of a wrong value served from the cache.
    """
    return with_checksum(_ENCODER.encode(record))


def decode_record(data: bytes) -> ActionRecord:
    """Inverse of :func:`encode_record`; raises ``msgspec.DecodeError`` for damaged records."""
    return _DECODER.decode(checked_payload(data, "action record"))


class PlanEntry(msgspec.Struct, frozen=True, array_like=True):
    """One node of a replayable run."""

    uid: str
    key: str
    input_digests: dict[str, str]
    record: ActionRecord
    #: The node's share of the plan digest (``PlanNode.token``).
    token: bytes = b""
    #: The node's manifest record (JSON) as an all-hit run shows it, if the run made one.
    manifest_node: bytes | None = None


class PlanRecord(msgspec.Struct, frozen=True):
    plan: str
    nodes: list[PlanEntry]


_PLAN_DECODER = msgspec.msgpack.Decoder(PlanRecord)


def encode_plan(record: PlanRecord) -> bytes:
    return with_checksum(_ENCODER.encode(record))


def decode_plan(data: bytes) -> PlanRecord:
    """Inverse of :func:`encode_plan`; raises ``msgspec.DecodeError`` when damaged."""
    return _PLAN_DECODER.decode(checked_payload(data, "plan record"))
