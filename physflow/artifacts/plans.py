"""Plan records: one record that replays a whole cached run.

Stored in the ``plans`` table of ``actions.sqlite``, or as ``plans/ab/<plan digest>`` files in
stores whose records are files.

A cached re-run that looks up every node's record pays a key, a record read and a record decode
per node. A plan record holds, for one *plan digest* (everything that decides the nodes' keys:
each node's fingerprint, config digest, seed token and wiring), every node's key, input digests
and action record as of the last run of that plan that completed. Serving it is equivalent to
serving each of those records from the action cache: every record in it is a genuine result of
its key, and the records chain (each node's inputs are its upstream's outputs in the same record
set). So a fully cached run reads one file instead of one record per node.

What is checked on use: the checksum, the plan digest, the node uids in order, and that every
object a record references is still in the store (gc or quarantine may have removed it; then the
run takes the per-node path, which recomputes what is missing). Plan records are a cache of the
action cache: deleting them (gc does) only costs speed.

Each node may carry its manifest record as an all-hit run shows it, already encoded, so a
replayed run writes its manifest without rebuilding node records.

The newest plan record of each pipeline name is also remembered (``Store.set_latest_plan``).
When a plan changed (one config edited), the runner reads that record and serves the nodes
whose keys did not change from it, by key, like the action cache would, and reuses their
manifest records when the node's token is unchanged too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ..core.records import PlanRecord, decode_plan, encode_plan

if TYPE_CHECKING:
    from .store import Store

#: Each pipeline (or scan) name keeps the plan records it used most recently, as many as fit
#: in this many bytes (at least one, at most PLANS_KEPT_MAX); older ones are deleted. A sweep of
#: a small pipeline keeps a record for every point it visits; a huge pipeline keeps its newest.
PLANS_BUDGET_BYTES = 64 << 20
PLANS_KEPT_MAX = 4096


def read_plan(store: Store, plan: str) -> PlanRecord | None:
    """The plan record for ``plan``, or None (absent, damaged, or filed under another digest)."""
    data = store.get_plan_bytes(plan)
    if data is None:
        return None
    try:
        record = decode_plan(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return record if record.plan == plan else None


def write_plan(store: Store, record: PlanRecord) -> None:
    """Write atomically; a concurrent writer of the same plan just wins (both are valid)."""
    store.put_plan_bytes(record.plan, encode_plan(record))
