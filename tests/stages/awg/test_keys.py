"""Keys from resolved content, chained where physics chains them: counted executions for an
amplitude change, a frequency change before a chain of ``continue`` segments and a change in
the number of segments; intents that resolve alike share results; hits are bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

import physflow as pf
from physflow.stages import awg
from physflow.stages.awg.examples import default_program

from .helpers import misses

FRAME = {"program", "assemble"}  # re-run whenever the program changes (arithmetic, concat)


def chain_program(d_hz: float = 1e6) -> awg.Program:
    """a (manual) -> move out by d -> move back -> three `continue` segments -> stop (manual)
    -> after. Changing d changes no frequency after 'back', only the phases it hands on."""
    tones = [
        awg.Tones(freqs_hz=[88e6, 91e6], amps=[0.2, 0.2]),
        awg.Tones(freqs_hz=[95e6], amps=[0.3]),
    ]
    return (
        awg.Program(tones)
        .hold("a", n_samples=3200, phase="manual", phases_rad=0.0)
        .move("go", n_samples=6400, df_hz=d_hz)
        .move("back", n_samples=6400, df_hz=-d_hz)
        .hold("c1", n_samples=3200)
        .ramp("c2", n_samples=3200, amp_scale=0.5)
        .hold("c3", n_samples=3200)
        .hold("stop", n_samples=3200, phase="manual", phases_rad=0.5)
        .hold("after", n_samples=3200)
    )


def test_amplitude_change_mid_program_recompiles_that_segment_only(store):
    prog = default_program()
    first = prog.pipeline().run(store=store).raise_on_failure()
    assert misses(first) == FRAME | {s.name for s in prog.config.segments}
    res = prog.replace("probe", amps=0.06).pipeline().run(store=store).raise_on_failure()
    assert misses(res) == FRAME | {"probe"}
    assert len(res.hits) == len(prog.config.segments) - 1
    again = prog.replace("probe", amps=0.06).pipeline().run(store=store)
    assert again.misses == []


def test_frequency_change_before_a_continue_chain_recompiles_the_chain(store):
    base, changed = chain_program(1e6), chain_program(1.5e6)
    base.pipeline().run(store=store).raise_on_failure()
    res = changed.pipeline().run(store=store).raise_on_failure()
    assert misses(res) == FRAME | {"go", "back", "c1", "c2", "c3"}
    assert set(res.hits) == {"a", "stop", "after"}
    # the chain was recompiled for its start phases alone: same frequencies, other phases
    old, new = base.resolve().contents, changed.resolve().contents
    for i in (3, 4, 5):
        assert old[i].channels[0].f0_hz == new[i].channels[0].f0_hz
        assert old[i].channels[0].phase0 != new[i].channels[0].phase0


def test_segment_count_change_recompiles_only_new_content(store):
    base = chain_program()
    base.pipeline().run(store=store).raise_on_failure()
    longer = base.insert(6, "hold", "extra", n_samples=1600)  # before 'stop': whole cycles
    res = longer.pipeline().run(store=store).raise_on_failure()
    assert misses(res) == FRAME | {"extra"}
    res = base.without("c3").pipeline().run(store=store).raise_on_failure()
    assert misses(res) == FRAME  # a hold of whole cycles: nothing after it changes
    # without the ramp c2 the amplitude stays 0.2: c3 becomes c1's twin (a hit on c1's
    # result); 'stop' now holds the louder tones ('after' continues it with whole cycles: the
    # same content again, computed once)
    res = base.without("c2").pipeline().run(store=store).raise_on_failure()
    assert misses(res) == FRAME | {"stop"}
    assert res.digest("c3") == res.digest("c1") and res.digest("after") == res.digest("stop")
    assert res["assemble.steps"].names == ("a", "go", "back", "c1", "c3", "stop", "after")


def test_an_early_move_changes_every_later_segment(store):
    prog = default_program()
    prog.pipeline().run(store=store).raise_on_failure()
    moved = prog.replace("out", df_hz=2.5e6)
    res = moved.pipeline().run(store=store).raise_on_failure()
    names = [s.name for s in prog.config.segments]
    after = set(names[names.index("out") :])
    assert misses(res) == FRAME | after
    assert set(res.hits) == set(names) - after


def test_keys_come_from_resolved_content_not_intent(store):
    # 'move by +1 MHz, then hold' and 'hold at the moved frequency' resolve to the same hold
    a = awg.Program([awg.Tones(freqs_hz=[90e6], amps=[0.3])])
    a.move("shift", n_samples=6400, df_hz=1e6).hold("h", 40e-6, phase="manual", phases_rad=0.3)
    b = awg.Program([awg.Tones(freqs_hz=[91e6], amps=[0.3])])
    b.hold("other_name", 40.003e-6, phase="manual", phases_rad=0.3)  # same 32-sample length
    assert a.resolve().contents[1] == b.resolve().contents[0]
    a.pipeline().run(store=store).raise_on_failure()
    res = b.pipeline().run(store=store).raise_on_failure()
    assert "other_name" in res.hits
    # a duration that quantises to another length is another segment
    c = awg.Program([awg.Tones(freqs_hz=[91e6], amps=[0.3])])
    c.hold("h", 40.1e-6, phase="manual", phases_rad=0.3)
    assert "h" in c.pipeline().run(store=store).misses


def test_identical_segments_in_one_program_run_once(store):
    prog = awg.Program([awg.Tones(freqs_hz=[90e6], amps=[0.3])])
    prog.hold("x", n_samples=3200).hold("y", n_samples=3200)  # whole cycles: same phases
    started = []
    res = prog.pipeline().run(
        store=store, progress=lambda e: started.append(e.node_id) if e.kind == "started" else None
    )
    res.raise_on_failure()
    assert res.digest("x") == res.digest("y")
    assert len([n for n in started if n in ("x", "y")]) == 1


def test_a_hit_is_bit_identical_to_a_fresh_compile(tmp_path):
    prog = default_program()
    first = prog.pipeline().run(store=pf.Store(tmp_path / "a")).raise_on_failure()
    hit = prog.pipeline().run(store=pf.Store(tmp_path / "a"))
    assert hit.misses == []
    fresh = prog.pipeline().run(store=pf.Store(tmp_path / "b"), executor="threads", workers=2)
    for ref in ("assemble.samples", "assemble.steps", "probe", "image"):
        assert hit.digest(ref) == fresh.digest(ref) == first.digest(ref), ref
    np.testing.assert_array_equal(hit["assemble.samples"], fresh["assemble.samples"])
    # the lab-loop compiler (memory tier) serves the same bytes
    with awg.Compiler(store=tmp_path / "a") as compiler:
        wave = compiler.prepare_point(prog).waveform
    np.testing.assert_array_equal(wave.samples(), hit["assemble.samples"])


@pytest.mark.slow
def test_worker_processes_store_the_serial_bytes(tmp_path):
    prog = default_program()
    serial = prog.pipeline().run(store=pf.Store(tmp_path / "s")).raise_on_failure()
    procs = prog.pipeline().run(store=pf.Store(tmp_path / "p"), executor="processes", workers=2)
    procs.raise_on_failure()
    assert procs.digest("assemble.samples") == serial.digest("assemble.samples")
