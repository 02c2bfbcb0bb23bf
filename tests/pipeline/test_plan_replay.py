"""Plan records: a fully cached run replays one record, and never serves what it should not."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

import physflow as pf
from physflow.core.framing import hex_of
from physflow.core.records import decode_plan
from physflow.manifests.writer import as_replayed_hit, node_record
from physflow.pipeline.outcome import NodeState
from physflow.pipeline.plan import plan_digest, plan_pipeline

from .counting_stages import CALLS, Level, Scale, noise, scale, source, split, total

BIG = 1 << 16


@pytest.fixture
def store(tmp_path, actions_layout):
    """Plan records live in actions.sqlite or in plans/ files: every test runs on both."""
    return pf.Store(tmp_path / "store", actions=actions_layout)


@pf.stage(version="1")
def big_source(cfg: Level) -> np.ndarray:
    CALLS["big_source"] += 1
    return np.full(BIG, cfg.value)


def pipeline(level=1.0, factor=2.0, seed=3, name="replay", half="high"):
    p = pf.Pipeline(name, seed=seed)
    p.add("src", source, Level(value=level))
    p.add("scaled", scale, Scale(factor=factor), x="src")
    p.add("halves", split, x="scaled")
    p.add("sum", total, x=f"halves.{half}")
    p.add("noise", noise, Scale(factor=factor))
    p.add("noise_sum", total, x="noise")
    return p


def _comparable(manifest, other_store: bool = False):
    """A manifest without what legitimately differs between two runs (the seal covers
    the run id and times, so it differs too; and, for runs on two
    stores, between two executions of a node: its timings, and the store's path)."""
    data = msgspec.to_builtins(manifest)
    for key in ("run_id", "started", "finished", "duration_s", "environment", "checksum"):
        data.pop(key)
    if other_store:
        data.pop("store")
        for node in data["nodes"]:
            node.pop("started", None)
            node.pop("duration_s", None)
    return data


def test_third_run_is_replayed_and_matches_a_per_node_warm_run(store, calls):
    first = pipeline().run(store=store)
    assert first.outcome.replayed is False
    calls.clear()
    second = pipeline().run(store=store)
    assert second.outcome.replayed, "a complete run leaves a plan record"
    assert sum(calls.values()) == 0
    assert second.hits == first.misses and len(second.hits) == 6
    assert second["sum"] == first["sum"] == 1000.0
    np.testing.assert_array_equal(second["noise"], first["noise"])
    # the same run on the per-node path (no plan records) gives the same manifest
    store.drop_plans()
    per_node = pipeline().run(store=store)
    assert per_node.outcome.replayed is False
    assert _comparable(second.manifest) == _comparable(per_node.manifest)
    on_disk = pf.load_manifest(second.manifest_path).manifest
    assert _comparable(on_disk) == _comparable(per_node.manifest)


def test_replayed_hit_records_equal_per_node_hit_records(store):
    res = pipeline().run(store=store)  # all misses: records carry started/attempts
    for uid, state in res.outcome.states.items():
        node = res.outcome.nodes[uid]
        missed = node_record(node, state)
        hit_state = NodeState("hit", state.key, state.input_digests, state.outputs, state.record)
        assert as_replayed_hit(missed, state) == node_record(node, hit_state)


def test_config_change_is_not_replayed(store, calls):
    pipeline().run(store=store)
    pipeline().run(store=store)
    calls.clear()
    res = pipeline(factor=3.0).run(store=store)
    assert res.outcome.replayed is False
    assert dict(calls) == {"scale": 1, "split": 1, "total": 2, "noise": 1}
    assert res["sum"] == 1500.0


def test_plan_digest_covers_what_decides_keys():
    base = plan_digest(plan_pipeline(pipeline()))
    assert plan_digest(plan_pipeline(pipeline())) == base
    assert plan_digest(plan_pipeline(pipeline(level=2.0))) != base  # config
    assert plan_digest(plan_pipeline(pipeline(seed=4))) != base  # seed of an rng stage
    renamed = pf.Pipeline("other-name", seed=3)
    for node_id, node in pipeline().nodes.items():
        renamed.add(node_id, node.stage, node.config, **{k: str(r) for k, r in node.inputs.items()})
    assert plan_digest(plan_pipeline(renamed)) == base  # the pipeline's name is not in keys
    assert plan_digest(plan_pipeline(pipeline(half="low"))) != base  # wiring


def test_seed_change_of_rng_stage_reexecutes_it_only(store, calls):
    pipeline().run(store=store)
    pipeline().run(store=store)
    calls.clear()
    res = pipeline(seed=4).run(store=store)
    assert res.outcome.replayed is False
    assert dict(calls) == {"noise": 1, "total": 1}


def test_missing_object_falls_back_and_recomputes(store, calls):
    big = pf.Pipeline("big", seed=0)
    big.add("src", big_source, Level(value=1.0))
    big.add("sum", total, x="src")
    first = big.run(store=store)
    src = first.outcome.states["src"].outputs["value"]
    assert src.objects, "the test needs a value stored as an object"
    assert big.run(store=store).outcome.replayed
    store.quarantine(src.objects[0])
    calls.clear()
    res = big.run(store=store)
    assert res.outcome.replayed is False, "a plan record whose objects are gone is not replayed"
    assert calls["big_source"] == 1 and calls["total"] == 0
    np.testing.assert_array_equal(res["src"], np.full(BIG, 1.0))
    assert big.run(store=store).outcome.replayed


def test_damaged_plan_record_is_ignored(store, calls):
    pipeline().run(store=store)
    digest = plan_digest(plan_pipeline(pipeline()))
    data = bytearray(store.records.get_plan(hex_of(digest)))
    data[len(data) // 2] ^= 0x01
    store.records.put_plan(hex_of(digest), bytes(data))
    assert store.actions.plan(digest) is None
    calls.clear()
    res = pipeline().run(store=store)
    assert res.outcome.replayed is False and sum(calls.values()) == 0
    assert res["sum"] == 1000.0
    assert store.actions.plan(digest) is not None, "the per-node run rewrote the plan record"


def test_plan_record_filed_under_another_digest_is_ignored(store, calls):
    pipeline(factor=3.0).run(store=store)
    other = plan_digest(plan_pipeline(pipeline(factor=3.0)))
    mine = plan_digest(plan_pipeline(pipeline()))
    store.records.put_plan(hex_of(mine), store.records.get_plan(hex_of(other)))
    assert decode_plan(store.records.get_plan(hex_of(mine))).plan == other
    calls.clear()
    res = pipeline().run(store=store)
    assert res.outcome.replayed is False
    assert res["sum"] == 1000.0 and calls["scale"] == 1


def test_failed_run_leaves_no_plan_record(store):
    @pf.stage(version="1")
    def broken(x: np.ndarray) -> float:
        raise ValueError("no")

    p = pipeline()
    p.add("bad", broken, x="src")
    res = p.run(store=store)
    assert res.failed == ["bad"]
    assert store.actions.plan(res.outcome.plan_digest) is None
    assert p.run(store=store).outcome.replayed is False


def test_replayed_run_reports_every_node_as_a_hit(store):
    pipeline().run(store=store)
    events = []
    res = pipeline().run(store=store, progress=events.append)
    assert res.outcome.replayed
    assert [(e.kind, e.uid) for e in events] == [("hit", uid) for uid in res.outcome.states]


def test_replayed_run_without_manifest_file_still_has_its_manifest(store):
    pipeline().run(store=store)
    res = pipeline().run(store=store, write_manifest=False)
    assert res.outcome.replayed and res.manifest_path is None
    assert [n.status for n in res.manifest.nodes] == ["hit"] * 6
    by_id = {n.id: n for n in res.manifest.nodes}
    assert by_id["sum"].metrics == {"value": 1000.0}


def test_replay_works_on_every_executor(store, calls, dask_executor):
    pipeline().run(store=store)
    for executor in ("threads", "processes", dask_executor):
        res = pipeline().run(store=store, executor=executor)
        assert res.outcome.replayed and res["sum"] == 1000.0


def test_gc_that_removes_records_drops_plan_records(store, calls):
    pipeline().run(store=store)
    assert store.stats().by_kind["plans"].entries == 1
    dry = store.gc(max_bytes=0, keep_manifests=None, dry_run=True)
    assert dry.removed_plans == 1 and store.stats().by_kind["plans"].entries == 1
    report = store.gc(max_bytes=0, keep_manifests=None)
    assert report.removed_actions and report.removed_plans == 1
    assert store.stats().by_kind["plans"].entries == 0
    calls.clear()
    res = pipeline().run(store=store)
    assert res.outcome.replayed is False and sum(calls.values()) == 6  # nothing survived gc


def test_gc_keeps_plan_records_when_nothing_else_goes(store):
    pipeline().run(store=store)
    report = store.gc(max_bytes=None, keep_manifests=None)
    assert report.removed_plans == 0 and not report.removed_actions
    assert pipeline().run(store=store).outcome.replayed


def test_verify_repair_drops_plan_records(store, calls, raw_records):
    first = pipeline().run(store=store)
    key = first.outcome.states["sum"].key
    raw_records(store).write(key, b"\x00garbage")
    report = store.verify()
    assert list(report.bad_records) == [key]
    calls.clear()
    res = pipeline().run(store=store)
    assert res.outcome.replayed is False and dict(calls) == {"total": 1}
    assert res["sum"] == 1000.0


# -- hints: the newest plan record of a pipeline serves the unchanged nodes of a changed plan --


def test_changed_plan_serves_unchanged_nodes_from_the_newest_plan_record(store, raw_records):
    first = pipeline().run(store=store)
    raw = raw_records(store)
    for key in raw.key_list():  # only the plan record knows the results now
        raw.write(key, b"\x00gone")
    res = pipeline(factor=3.0).run(store=store)  # scale, split, sum, noise, noise_sum change
    assert res.outcome.replayed is False
    assert res.hits == ["src"] and res["src"].tolist() == first["src"].tolist()


def test_hinted_manifest_equals_the_per_node_manifest(store, tmp_path, actions_layout):
    pipeline().run(store=store)
    hinted = pipeline(level=2.0).run(store=store)  # everything downstream of src changes...
    statuses = {n.id: n.status for n in hinted.manifest.nodes}
    assert statuses["noise"] == statuses["noise_sum"] == "hit"  # ...but not the noise branch
    other = pf.Store(tmp_path / "other", actions=actions_layout)
    pipeline().run(store=other)
    other.drop_plans()
    per_node = pipeline(level=2.0).run(store=other)
    assert _comparable(hinted.manifest, True) == _comparable(per_node.manifest, True)


def test_renamed_node_is_a_hit_with_its_own_manifest_record(store, calls):
    pipeline().run(store=store)
    renamed = pf.Pipeline("replay", seed=3)
    renamed.add("source", source, Level(value=1.0))  # deterministic: same key, new name
    renamed.add("scaled", scale, Scale(factor=2.0), x="source")
    calls.clear()
    res = renamed.run(store=store)
    assert res.hits == ["source", "scaled"] and sum(calls.values()) == 0
    ids = [n.id for n in res.manifest.nodes]
    assert ids == ["source", "scaled"]
    assert res.manifest.nodes[1].input_refs == {"x": "source"}


def test_hint_whose_objects_are_gone_is_not_served(store, calls):
    big = pf.Pipeline("big", seed=0)
    big.add("src", big_source, Level(value=1.0))
    big.add("sum", total, x="src")
    first = big.run(store=store)
    store.quarantine(first.outcome.states["src"].outputs["value"].objects[0])
    changed = pf.Pipeline("big", seed=0)
    changed.add("src", big_source, Level(value=1.0))
    changed.add("sum", total, x="src")
    changed.add("sum2", total, x="src")
    calls.clear()
    res = changed.run(store=store)
    assert calls["big_source"] == 1 and res["sum2"] == float(BIG)


def test_replay_and_hints_on_an_fsspec_store(calls):
    import uuid

    store = pf.Store(f"memory://replay-{uuid.uuid4().hex}")
    pipeline().run(store=store)
    calls.clear()
    again = pipeline().run(store=store)
    assert again.outcome.replayed and sum(calls.values()) == 0
    changed = pipeline(factor=3.0).run(store=store)
    assert changed.hits == ["src"] and changed["sum"] == 1500.0
    assert store.stats().by_kind["plans"].entries == 2


def test_deleting_a_record_makes_its_node_run_again(store, calls):
    first = pipeline().run(store=store)
    store.delete_action(first.outcome.states["sum"].key)
    calls.clear()
    res = pipeline().run(store=store)
    assert res.outcome.replayed is False and dict(calls) == {"total": 1}


def test_each_pipeline_name_keeps_the_plans_it_used_last(store, monkeypatch):
    from physflow.artifacts import action_cache

    monkeypatch.setattr(action_cache, "PLANS_KEPT_MAX", 4)
    levels = [float(i) for i in range(7)]
    for level in levels:
        pipeline(level=level).run(store=store)
    assert store.stats().by_kind["plans"].entries == 4
    assert pipeline(level=levels[-1]).run(store=store).outcome.replayed
    oldest = pipeline(level=levels[0]).run(store=store)  # its plan record was deleted...
    assert oldest.outcome.replayed is False and len(oldest.hits) == 6  # ...its records were not
    # kept now: the four used last (4, 5, 6 and 0); a sweep revisiting them replays every one
    for _ in range(2):
        for level in (levels[4], levels[5], levels[6], levels[0]):
            assert pipeline(level=level).run(store=store).outcome.replayed


def test_plan_records_of_a_name_fit_its_byte_budget(store, monkeypatch):
    from physflow.artifacts import action_cache

    digest = pipeline().run(store=store).outcome.plan_digest
    size = len(store.records.get_plan(hex_of(digest)))
    monkeypatch.setattr(action_cache, "PLANS_BUDGET_BYTES", int(2.5 * size))
    for level in (2.0, 3.0, 4.0, 5.0):
        pipeline(level=level).run(store=store)
    assert store.stats().by_kind["plans"].entries == 2  # two plans of this size fit


def test_a_plan_listed_under_another_name_is_kept(store, monkeypatch):
    from physflow.artifacts import action_cache

    monkeypatch.setattr(action_cache, "PLANS_KEPT_MAX", 4)
    pipeline(level=1.0).run(store=store)  # written under "replay"
    other = pipeline(name="other").run(store=store)  # same plan digest (names are not in it)
    assert other.outcome.replayed  # and now also used by "other"
    for level in [float(i + 10) for i in range(4)]:
        pipeline(level=level).run(store=store)  # level=1.0 falls off "replay"'s list
    assert store.stats().by_kind["plans"].entries == 4 + 1
    assert pipeline(name="other").run(store=store).outcome.replayed
