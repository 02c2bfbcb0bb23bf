"""A slow stage that logs each execution (for the claims-in-runs test's worker processes)."""

from __future__ import annotations

import os
import time

import physflow as pf


class Slow(pf.Config):
    log: str
    seconds: float = 1.0


@pf.stage(version="1")
def slow_square(cfg: Slow) -> float:
    with open(cfg.log, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(cfg.seconds)
    return 49.0
