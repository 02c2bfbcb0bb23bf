"""The bottom layer: value digests, Merkle framing, cache keys, records, names and small graph
helpers. Nothing here imports any other part of physflow, so every layer above can rely on it."""
