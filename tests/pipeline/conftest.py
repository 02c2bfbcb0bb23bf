from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture(scope="module")
def dask_executor():
    """One real LocalCluster per test module: 2 worker processes, 2 threads each. Workers
    import test stages by path, so this directory goes on their PYTHONPATH."""
    pytest.importorskip("distributed")
    import physflow as pf

    here = str(Path(__file__).resolve().parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, old) if p)
    executor = pf.DaskExecutor(workers=2, threads_per_worker=2)
    executor.connect()
    yield executor
    executor.close()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
