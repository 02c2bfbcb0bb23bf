"""The engine: configs, hashing, stages, graphs, keys, rng, planning and running."""
