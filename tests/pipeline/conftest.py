from __future__ import annotations

import pytest

from . import counting_stages


@pytest.fixture
def calls():
    counting_stages.CALLS.clear()
    return counting_stages.CALLS


@pytest.fixture
def store(tmp_path):
    import physflow as pf

    return pf.Store(tmp_path / "store")
