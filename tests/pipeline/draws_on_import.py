"""A module that draws from numpy's global generator when imported (as jax 0.10 does)."""

import numpy as np

DRAWN = np.random.random()
