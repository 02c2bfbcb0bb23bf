"""Hashing in a forked child never hangs (blake3's thread pool does not survive fork)."""

from __future__ import annotations

import os
import time

import numpy as np

import physflow as pf


def test_forked_child_hashes_large_arrays_after_the_parent_did():
    data = np.arange(2_000_000, dtype=np.float64)  # 16 MB: the multithreaded path
    expected = pf.digest(data)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, pf.digest(data).encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("the forked child hung while hashing")
    assert os.read(read, 200).decode() == expected
