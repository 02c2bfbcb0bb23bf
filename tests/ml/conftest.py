"""Helpers for the ML dataset tests."""

from __future__ import annotations

import numpy as np
import pytest


def same_samples(a, b) -> None:
    """Every sample of two datasets holds the same keys and bit-identical values."""
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x.keys() == y.keys(), i
        for key in x:
            u, v = np.asarray(x[key]), np.asarray(y[key])
            assert u.dtype == v.dtype and u.shape == v.shape, (i, key)
            assert u.tobytes() == v.tobytes(), (i, key)


@pytest.fixture
def count_file(tmp_path, monkeypatch):
    """Count calls of the test stage 'signal' (across processes) in a file."""
    from .ml_stages import COUNT_ENV

    path = tmp_path / "calls"
    monkeypatch.setenv(COUNT_ENV, str(path))
    return path
