from __future__ import annotations

import pytest

from . import store_stages


@pytest.fixture
def store(tmp_path):
    import physflow as pf

    return pf.Store(tmp_path / "store")


@pytest.fixture
def calls():
    store_stages.CALLS.clear()
    return store_stages.CALLS
