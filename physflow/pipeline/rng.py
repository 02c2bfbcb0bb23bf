"""Per-node random generators derived from (run seed, node id), never from global state."""

from __future__ import annotations

import functools
import threading

import blake3
import numpy as np

#: Held while numpy's global RNG is legitimately borrowed (e.g. the OptiCommPy backend seeds it,
#: then restores it) and while the runner snapshots it, so a snapshot on another thread never
#: sees the borrowed state and "restores" it.
GLOBAL_STATE_LOCK = threading.RLock()
#: The public name of that lock (``physflow.GLOBAL_RNG_LOCK``), for stage packs that must borrow
#: numpy's global generator (e.g. a library that seeds it).
GLOBAL_RNG_LOCK = GLOBAL_STATE_LOCK


@functools.lru_cache(maxsize=65536)
def spawn_key(node_id: str) -> tuple[int, ...]:
    """A stable spawn key from the node id: the same in every process and Python version."""
    raw = blake3.blake3(node_id.encode()).digest(length=16)
    return (int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little"))


def seed_token(seed: int, node_id: str) -> tuple[int, tuple[int, ...]]:
    """What identifies a node's random stream; enters the cache key of stages that use rng."""
    return (int(seed), spawn_key(node_id))


def node_generator(seed: int, node_id: str) -> np.random.Generator:
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn_key(node_id)))
    )
