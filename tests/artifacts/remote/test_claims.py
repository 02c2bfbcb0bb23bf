"""Claims: of several workers reaching one missing key, at most one computes; the others wait
and hit; a crashed claimant's claim expires. On an s3:// store and on a local directory."""

from __future__ import annotations

import json
import subprocess

import pytest

import physflow as pf
from physflow.artifacts.claims import Claims

from .conftest import spec, worker

KEY = "b3:" + "5a" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["s3", "local"])
def any_store(request, tmp_path):
    if request.param == "s3":
        return request.getfixturevalue("bucket").store()
    return pf.Store(tmp_path / "local", actions="files")


def test_one_claim_at_a_time_and_expiry(any_store):
    clock = Clock()
    a, b = Claims(any_store, clock=clock), Claims(any_store, clock=clock)
    assert a.exclusive and b.exclusive
    first = a.try_claim(KEY, ttl=60)
    assert first is not None and first.generation == 0
    assert b.try_claim(KEY, ttl=60) is None
    assert b.holder(KEY).owner == a.owner
    clock.now += 61  # the holder crashed: its claim expires, the next one takes over
    assert b.holder(KEY) is None
    second = b.try_claim(KEY, ttl=60)
    assert second is not None and second.generation == 1
    assert a.try_claim(KEY, ttl=60) is None
    first.release()  # the late first holder releases: the newer claim stays
    assert a.holder(KEY).owner == b.owner
    assert second.renew(120) and a.holder(KEY).expires == clock.now + 120
    second.release()
    assert a.holder(KEY) is None and a.generations(KEY) == []
    third = a.try_claim(KEY, ttl=60)
    assert third is not None and third.generation == 0


def test_damaged_claim_counts_as_expired(any_store):
    claims = Claims(any_store)
    assert claims.backend.create(claims.rel(KEY, 0), b"{not json")
    taken = claims.try_claim(KEY)
    assert taken is not None and taken.generation == 1


def test_run_once_in_one_process(any_store):
    claims = Claims(any_store)
    box: list[int] = []
    value, computed = claims.run_once(KEY, lambda: box[0] if box else None, lambda: 7)
    assert (value, computed) == (7, True)
    box.append(7)
    assert claims.run_once(KEY, lambda: box[0] if box else None, lambda: 8) == (7, False)


def _claimers(bucket, tmp_path, n: int, ttl: float, die: bool = False):
    log = tmp_path / "computed.log"
    extra = ["die"] if die else []
    return log, [
        worker(
            "claim",
            spec(bucket, tmp_path / f"tier{i}"),
            KEY,
            str(log),
            str(ttl),
            *extra,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]


@pytest.mark.slow
def test_four_processes_one_computes_the_others_wait_and_hit(bucket, tmp_path):
    log, procs = _claimers(bucket, tmp_path, 4, ttl=60)
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert len(log.read_text().splitlines()) == 1  # at most one computed
    assert sum(o["computed"] for o in outs) == 1
    assert len({json.dumps(o["value"]) for o in outs}) == 1


@pytest.mark.slow
def test_crashed_claimant_expires_and_another_computes(bucket, tmp_path):
    log, (victim,) = _claimers(bucket, tmp_path, 1, ttl=3.0, die=True)
    victim.communicate(timeout=60)
    assert victim.returncode < 0  # killed while holding the claim
    crashed_pid = log.read_text().split()[0]
    claims = Claims(bucket.store())
    held = claims.holder(KEY)  # the dead claimant's claim is still there (3 s ttl)
    assert held is not None and str(held.pid) == crashed_pid
    _log, (heir,) = _claimers(bucket, tmp_path, 1, ttl=60)
    out, err = heir.communicate(timeout=60)
    assert heir.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["computed"] is True
    lines = [line.split() for line in log.read_text().splitlines()]
    assert lines[0][0] == crashed_pid and len(lines) == 2
    assert float(lines[1][1]) >= held.expires  # the heir waited for the expiry, then computed
    assert claims.holder(KEY) is None and bucket.store().get_action(KEY) is not None
