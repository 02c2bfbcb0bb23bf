from __future__ import annotations

import pytest


@pytest.fixture
def store(tmp_path):
    import physflow as pf

    return pf.Store(tmp_path / "store")


@pytest.fixture
def fresh_crest():
    """The crest optimiser's in-process table and counters, emptied (counts start at 0)."""
    from physflow.stages.awg import crest

    crest.clear_cache()
    yield crest
    crest.clear_cache()
