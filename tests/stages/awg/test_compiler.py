"""The lab-loop API: ``Compiler(store=...).prepare_point(program)`` per scan point, its
in-memory tier (a cached point touches no disk), background persistence, parallel cold
compiles, and the slow path (a layout change)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import physflow as pf
from physflow.stages import awg
from physflow.stages.awg.examples import big_program, default_program

from .test_keys import chain_program


def test_scan_points_recompile_only_the_changed_segment(tmp_path):
    prog = default_program()
    names = prog.config.segments
    with awg.Compiler(store=tmp_path / "s", persist="sync") as compiler:
        first = compiler.prepare_point(prog)
        assert set(first.synthesised) == {s.name for s in names} and first.layout_changed
        assert first.changed_segments == first.waveform.names
        amps = [0.02, 0.03, 0.04]
        for a in amps:
            point = compiler.prepare_point(prog.replace("probe", amps=a))
            assert point.changed_segments == ("probe",) and point.synthesised == ("probe",)
            assert point.upload == ("probe",) and not point.layout_changed
        # revisiting a value: served from memory, nothing synthesised or loaded
        again = compiler.prepare_point(prog.replace("probe", amps=amps[0]))
        assert again.changed_segments == ("probe",)
        assert again.synthesised == () and again.loaded == ()
        same = compiler.prepare_point(prog.replace("probe", amps=amps[0]))
        assert same.changed_segments == () and same.synthesised == ()
        assert compiler.stats["store_runs"] == 1 + len(amps)
        # the waveform matches a pipeline run of the same program bit for bit
        res = prog.replace("probe", amps=amps[0]).pipeline().run(store=tmp_path / "s")
        assert set(res.misses) == {"program", "assemble"}  # same segment keys as the compiler
        np.testing.assert_array_equal(same.waveform.samples(), res["assemble.samples"])
        assert same.waveform.steps == res["assemble.steps"]


def test_a_cached_point_touches_no_disk(tmp_path):
    root = tmp_path / "store"
    prog = default_program()
    compiler = awg.Compiler(store=root)
    for a in (0.02, 0.03):
        compiler.prepare_point(prog.replace("probe", amps=a))
    expected = compiler.prepare_point(prog).waveform.samples()
    compiler.flush()  # background store writes of the points above are done
    moved = shutil.move(root, tmp_path / "elsewhere")
    for a in (0.02, 0.03, None):
        point = compiler.prepare_point(prog if a is None else prog.replace("probe", amps=a))
        assert point.synthesised == () and point.loaded == ()
    assert not root.exists()  # nothing was written (or re-created) where the store was
    np.testing.assert_array_equal(point.waveform.samples(), expected)
    shutil.move(moved, root)
    compiler.close()


def test_background_persistence_stores_what_the_point_synthesised(tmp_path, fresh_crest):
    prog = chain_program()
    with awg.Compiler(store=tmp_path / "s", persist="background") as compiler:
        compiler.prepare_point(prog)  # the first point always goes through the store
        point = compiler.prepare_point(prog.replace("after", amps=0.1))
        assert point.synthesised == ("after",) and point.loaded == ()
        compiler.flush()
    # a new session (empty memory) finds everything in the store: loads, computes nothing
    with awg.Compiler(store=tmp_path / "s") as fresh:
        cold = fresh.prepare_point(prog.replace("after", amps=0.1))
        assert cold.synthesised == () and set(cold.loaded) == set(cold.waveform.names)
    assert fresh_crest.stats()["optimisations"] == 0  # the chain has no optimised segment


def test_frequency_change_before_a_continue_chain(tmp_path):
    with awg.Compiler(store=tmp_path / "s") as compiler:
        compiler.prepare_point(chain_program(1e6))
        point = compiler.prepare_point(chain_program(1.5e6))
    chain = {"go", "back", "c1", "c2", "c3"}  # the moves, and the phases they hand on
    assert set(point.synthesised) == chain == set(point.changed_segments)
    assert not point.layout_changed


def test_segment_count_change_is_the_slow_path(tmp_path):
    prog = chain_program()
    with awg.Compiler(store=tmp_path / "s") as compiler:
        compiler.prepare_point(prog)
        point = compiler.prepare_point(prog.insert(6, "hold", "extra", n_samples=1600))
        assert point.layout_changed and point.synthesised == ("extra",)
        assert point.changed_segments == ("extra",)
        assert point.upload == point.waveform.names  # re-upload all, rewrite the step table
        assert point.waveform.steps.offsets[-1] == sum(point.waveform.steps.n_samples[:-1])


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_parallel_cold_compile_matches_serial(tmp_path, executor):
    prog = big_program(n_segments=8, tones=4, samples_per_segment=8192)
    serial = prog.pipeline().run(store=pf.Store(tmp_path / "serial")).raise_on_failure()
    with awg.Compiler(store=tmp_path / executor, executor=executor, workers=2) as compiler:
        point = compiler.prepare_point(prog)
    distinct = set(prog.resolve().contents)  # identical segments are computed once
    assert len(point.synthesised) == len(distinct) >= 6
    np.testing.assert_array_equal(point.waveform.samples(), serial["assemble.samples"])


@pytest.mark.parametrize("persist", ["sync", "background"])
def test_memory_tier_is_bounded_and_falls_back_to_the_store(tmp_path, persist):
    prog = chain_program()
    one_segment = 2 * 3200 * 2  # channels x samples x int16
    limit = 3 * one_segment
    with awg.Compiler(store=tmp_path / "s", memory_bytes=limit, persist=persist) as compiler:
        compiler.prepare_point(prog)
        for a in (0.05, 0.06, 0.07, 0.08):
            compiler.prepare_point(prog.replace("after", amps=a))
        compiler.flush()
        back = compiler.prepare_point(prog.replace("after", amps=0.05))
        # evicted from memory, found in the store: loaded, not synthesised
        assert back.loaded == ("after",) and back.synthesised == ()


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="persist"):
        awg.Compiler(tmp_path / "s", persist="later")
    with pytest.raises(ValueError, match="array_module"):
        awg.Compiler(tmp_path / "s", array_module="torch")
