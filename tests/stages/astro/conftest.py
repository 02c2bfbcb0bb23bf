from __future__ import annotations

import pytest

pytest.importorskip(
    "astropy", reason="the astro pack needs astropy (pip install 'physflow[astro]')"
)


@pytest.fixture
def store(tmp_path):
    import physflow as pf

    return pf.Store(tmp_path / "store")
