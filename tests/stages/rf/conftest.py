from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DETECT = ROOT / "configs" / "rf_detect.yaml"
DATASET = ROOT / "configs" / "rf_dataset.yaml"


@pytest.fixture
def store(tmp_path):
    import physflow as pf

    return pf.Store(tmp_path / "store")
