"""Bugs the reliability suite found, each reproduced deterministically (or nearly: the loops
stop at the first occurrence). Fixed ones stay as regression tests (their docstrings say what
was wrong); open ones would be marked ``xfail(strict=True)`` with the reason (none are open).

Most were found by test_concurrent_gc.py (4 writers + a gc loop); each reproduction removes an
input with a gc from inside the run (``crash_stages.gc_now``), which is what a concurrent gc
does. The last two were found by test_corruption_matrix.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import physflow as pf

from . import crash_stages as S
from . import crash_truth as T

ROOT = Path(__file__).resolve().parents[2]
N = 1 << 16


def _seed_store(root: Path) -> S.Gen:
    """A store holding ``g0`` (one 512 KiB array), so the next run plans it as a hit."""
    g = S.Gen(tag="g0", seed=0, n=N)
    first = pf.Pipeline("first")
    first.add("g0", S.gen, g)
    assert first.run(store=root).misses == ["g0"]
    return g


def test_a_consumer_queued_while_its_input_is_recomputed_gets_the_value(tmp_path):
    """Fixed in c97c930. Found: scheduler: a consumer that becomes ready while its (hit) input is
    being recomputed is queued with that input's outputs unset and receives {} as the value;
    its result is recorded under the genuine key, so every later run serves it (false hit)."""
    root = tmp_path / "s"
    g = _seed_store(root)
    p = pf.Pipeline("second")
    p.add("g0", S.gen, g)  # a hit when planned
    p.add("gate", S.gc_now, S.GcNow(tag="gate", root=str(root)))  # then gc removes it
    p.add("c1", S.combine, S.Tag(tag="c1"), a="g0", b="gate")  # fails to load g0: recompute
    p.add("y", S.scale, S.Scale(tag="y", factor=2.0), x="gate")  # done meanwhile ...
    p.add("m", S.length, S.Tag(tag="m"), a="y", b="g0")  # ... so m is queued before g0 is back
    res = p.run(store=root)  # serial: the order above is deterministic
    assert res.ok, res.errors
    assert res["m"] == N, f"m saw an input of length {res['m']}"
    assert p.run(store=root)["m"] == N  # and no wrong value is cached


def test_two_consumers_of_an_input_removed_mid_run_both_recompute(tmp_path):
    """Fixed in c97c930. Found: scheduler: when two running consumers fail on the same missing
    input, the first resets its producer for recompute and the second, finding the producer
    without outputs, fails the node ('corrupt input: ... is not in the store') instead of
    waiting for it."""
    expected = T.overlap_values((0,), 1.0)["g0"] - 2.0
    for attempt in range(6):  # both consumers must be running when the first fails: usual
        root = tmp_path / f"s{attempt}"
        g = _seed_store(root)
        p = pf.Pipeline("second")
        p.add("g0", S.gen, g)
        p.add("gate", S.gc_now, S.GcNow(tag="gate", root=str(root)))
        p.add("c1", S.combine, S.Tag(tag="c1"), a="g0", b="gate")
        p.add("c2", S.combine, S.Tag(tag="c2"), a="g0", b="gate")
        res = p.run(store=root, executor="threads", workers=2)
        assert res.ok, f"attempt {attempt}: {res.errors}"
        assert T.same(res["c1"], expected) and T.same(res["c2"], expected)


_RACE = """
import tempfile, threading
import numpy as np
import physflow as pf

BARRIER = threading.Barrier(8)

class C(pf.Config):
    i: int

@pf.stage(version="1", warn_untracked=False)
def together(cfg: C) -> np.ndarray:
    BARRIER.wait(timeout=60)  # all eight return at once: their outputs are stored at once
    return np.full(4096, float(cfg.i))

if __name__ == "__main__":
    p = pf.Pipeline("race")
    for i in range(8):
        p.add(f"n{i}", together, C(i=i))
    res = p.run(store=tempfile.mkdtemp(), executor="threads", workers=8)
    print(sorted(res.errors.values()))
"""


def test_first_use_of_the_codec_registry_from_threads(tmp_path):
    """Fixed in c97c930. Found: codecs._ensure_builtin sets _LOADED before registering the codecs:
    threads that store their first values at the same time find an empty registry (KeyError:
    'array') and their nodes fail; a fresh process on the threads executor hits it most runs."""
    script = tmp_path / "race.py"
    script.write_text(_RACE)
    for attempt in range(6):  # a race: each fresh process is one try (most fail at once)
        out = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        assert out.strip() == "[]", f"attempt {attempt}: {out}"


def test_a_value_removed_by_gc_while_open_is_missing_not_corrupt(tmp_path):
    """Fixed in c97c930. Found: array_read: a chunk (or zarr.json) that vanished because gc
    removed the whole object after it was opened is reported as CorruptObjectError, whose
    message claims it was moved to quarantine/ (nothing was); it should be MissingObjectError."""
    root = tmp_path / "s"
    p = pf.Pipeline("first")
    p.add("g0", S.gen, S.Gen(tag="g0", seed=0, n=N))
    res = p.run(store=root)
    lazy = pf.load_manifest(res.manifest_path).open("g0", lazy=True)
    assert pf.Store(root).gc(max_bytes=0, keep_manifests=0).removed_objects
    with pytest.raises(pf.MissingObjectError):
        lazy.sum().compute()


def test_a_streamed_output_whose_temp_entry_vanished_is_never_published(tmp_path):
    """Fixed in c97c930. Found: a streamed output whose temp entry gc removed mid-write
    (gc(tmp_grace_s=0), or a writer idle longer than the grace) is published without its first
    chunk and recorded: the run reports success and every read of the value fails."""
    root = tmp_path / "s"
    p = pf.Pipeline("stream")
    p.add("f", S.stream_during_gc, S.GcNow(tag="f", root=str(root)))
    res = p.run(store=root)
    if res.ok:  # either the node fails with a clear error, or its value is complete
        expected = np.repeat(np.arange(4, dtype=np.float32), 16)[:, None] * np.ones(64, "f4")
        assert T.same(res["f.field"], expected)
    else:
        assert str(root) in res.errors["f"], res.errors  # names the store


def test_gc_with_zero_grace_spares_a_live_writer(tmp_path):
    """Fixed in c97c930. Found: gc(tmp_grace_s=0) removes the temp entries of live writers on a
    local store (documented: 'others after the grace period'), so a concurrent aggressive gc
    fails nodes ('No such file or directory ... Free space'); issue 12 asks 0 failures with
    tmp_grace_s=0: spare live local pids whatever the grace, or change the requirement."""
    root = tmp_path / "s"
    p = pf.Pipeline("stream")
    p.add("f", S.stream_during_gc, S.GcNow(tag="f", root=str(root)))
    res = p.run(store=root)
    assert res.ok, res.errors
    expected = np.repeat(np.arange(4, dtype=np.float32), 16)[:, None] * np.ones(64, "f4")
    assert T.same(res["f.field"], expected)


def test_publishing_an_object_that_gc_removes_at_that_moment_retries(tmp_path, monkeypatch):
    """Fixed in c97c930. Found: LocalBackend.publish: when the rename fails because the same
    object is already published, and gc removes that object before the os.path.exists check,
    the write fails ('Directory not empty ... Free space') instead of retrying the rename."""
    root = tmp_path / "s"
    real_rename, staged = os.rename, []

    def rename(src, dst, **kw):
        if "objects" in str(dst) and not staged:
            staged.append(dst)
            shutil.copytree(src, dst)  # another writer publishes the same object first ...
            try:
                return real_rename(src, dst, **kw)  # ... so this rename fails (not empty) ...
            finally:
                shutil.rmtree(dst)  # ... and gc removes that object before publish looks
        return real_rename(src, dst, **kw)

    monkeypatch.setattr(os, "rename", rename)
    p = pf.Pipeline("again")
    p.add("g0", S.gen, S.Gen(tag="g0", seed=0, n=N))
    res = p.run(store=root)
    assert staged, "the race was not staged"
    assert res.ok, res.errors
    assert T.same(res["g0"], T.overlap_values((0,), 1.0)["g0"])


def test_an_empty_record_database_is_replaced(tmp_path):
    """Fixed in e0bf661. Found: layout.open_sqlite_records treats every sqlite3.OperationalError as
    'locked', so an empty actions.sqlite (a valid database without the actions table: truncated, or
    created on a full disk) makes Store(), every run and 'cache verify' raise 'no such table:
    actions'."""
    root = tmp_path / "s"
    _seed_store(root)
    for suffix in ("", "-wal", "-shm"):
        (root / f"actions.sqlite{suffix}").unlink(missing_ok=True)
    (root / "actions.sqlite").write_bytes(b"")
    with pytest.warns(UserWarning, match="damaged"):
        store = pf.Store(root)
    p = pf.Pipeline("again")
    p.add("g0", S.gen, S.Gen(tag="g0", seed=0, n=N))
    res = p.run(store=store)
    assert res.ok and T.same(res["g0"], T.overlap_values((0,), 1.0)["g0"])


def test_an_edited_scalar_in_a_manifest_is_never_served(tmp_path, capsys):
    """Fixed in e0bf661. Found: run manifests carry no checksum: a one-digit edit of a stored
    scalar (an output's value or a metric) is returned by Manifest.outputs()/metrics() and
    displayed by 'physflow show' (values opened with Manifest.open() come from checked records and
    stay right)."""
    from physflow.cli.main import main
    from physflow.manifests.reader import ManifestError

    p = pf.Pipeline("scalar")
    p.add("g0", S.gen, S.Gen(tag="g0", seed=0, n=N))
    p.add("t", S.total, S.Tag(tag="t"), x="g0")
    res = p.run(store=tmp_path / "s")
    true_t = float(np.sum(T.overlap_values((0,), 1.0)["g0"]))
    path = Path(res.manifest_path)
    text = path.read_text()
    shown = repr(true_t)
    assert text.count(shown) >= 1
    i = 1 if shown.startswith("-") else 0
    edited = shown[:i] + ("2" if shown[i] == "1" else "1") + shown[i + 1 :]  # one digit changed
    path.write_text(text.replace(shown, edited))
    try:
        value = pf.load_manifest(path).outputs("t")["value"].value
    except ManifestError:
        value = true_t  # refusing the damaged manifest is right too
    assert value == true_t
    main(["show", str(path), "--store", str(tmp_path / "s")])
    assert f"{float(edited):.6g}" not in capsys.readouterr().out


def test_a_single_chunk_array_removed_by_gc_while_read_is_missing(tmp_path):
    """Fixed in e0bf661. Found: array_read._mmap_single (the eager path of single-chunk arrays:
    res[...], inputs) reports a chunk whose whole object gc removed after it was opened as
    CorruptObjectError ('chunk c/0 is missing ... moved to quarantine/'), not MissingObjectError;
    c97c930 fixed Source.read only."""
    root = tmp_path / "s"
    _seed_store(root)
    store = pf.Store(root)
    (key,) = store.actions.list_keys()
    reader = store.array_reader(store.get_action(key).outputs["value"].digest)  # opened
    assert pf.Store(root).gc(max_bytes=0, keep_manifests=0).removed_objects
    with pytest.raises(pf.MissingObjectError):
        reader.read_all()


def test_an_input_removed_between_size_check_and_map_is_recomputed(tmp_path, monkeypatch):
    """Fixed in e0bf661. Found: array_read._mmap_single: an object gc removes between the size
    check and np.memmap's open raises a raw FileNotFoundError; as an input load it fails the node
    instead of taking the recompute path, and res[...] raises it to the user."""
    root = tmp_path / "s"
    g = _seed_store(root)
    real_getsize, staged = os.path.getsize, []

    def getsize(path):
        size = real_getsize(path)
        if "objects" in str(path) and not staged:  # the chunk's size is checked: gc now
            staged.append(path)
            pf.Store(root).gc(max_bytes=0, keep_manifests=0)
        return size

    p = pf.Pipeline("second")
    p.add("g0", S.gen, g)  # a hit when planned
    p.add("t", S.total, S.Tag(tag="t"), x="g0")  # reads g0 from the store
    monkeypatch.setattr(os.path, "getsize", getsize)
    res = p.run(store=root)
    assert staged, "the race was not staged"
    assert res.ok, res.errors
    assert res["t"] == float(np.sum(T.overlap_values((0,), 1.0)["g0"]))


def test_dropping_plans_while_a_writer_recreates_the_directory(tmp_path, monkeypatch):
    """Fixed in e0bf661. Found: LocalBackend.remove checks isdir, then unlinks: when plans/ is
    absent at the check (a concurrent drop) and a writer re-creates it before the unlink, gc
    (drop_plans) crashes with IsADirectoryError; seen in the files layout with 4 writers and a gc
    loop."""
    root = tmp_path / "s"
    store = pf.Store(root, actions="files")
    p = pf.Pipeline("first")
    p.add("g0", S.gen, S.Gen(tag="g0", seed=0, n=N))
    p.run(store=store)
    assert (root / "plans").is_dir()
    real_isdir, staged = os.path.isdir, []

    def isdir(path):
        if str(path).endswith("plans") and not staged:  # absent when looked at ...
            staged.append(path)
            return False  # ... and there again (a writer re-created it) when unlinked
        return real_isdir(path)

    monkeypatch.setattr(os.path, "isdir", isdir)
    store.drop_plans()
    assert staged, "the race was not staged"
    assert not any(path.is_file() for path in (root / "plans").rglob("*"))  # all dropped


def test_a_recomputed_input_is_handed_over_in_memory(tmp_path, monkeypatch):
    """Fixed in e0bf661. Found: scheduler: a producer recomputed for a consumer whose input
    vanished is stored but not handed over in memory when its other consumers were done with it
    (serial/threads); the consumer reads it back from the store, where a concurrent gc can remove
    it again, and after two recomputes the node fails ('corrupt input: ...')."""
    root = tmp_path / "s"
    g, scale = S.Gen(tag="g0", seed=0, n=N), S.Scale(tag="s", factor=2.0)
    first = pf.Pipeline("first")
    first.add("g0", S.gen, g)
    first.add("s", S.scale, scale, x="g0")
    done = first.run(store=root)
    pf.Store(root).delete_action(done.outcome.states["g0"].key)  # g0 runs, s hits
    real_get_value, removals = pf.Store.get_value, []

    def get_value(self, entry):  # a concurrent gc removes everything before each store read
        if len(removals) < 6:
            removals.append(entry.digest)
            pf.Store(root).gc(max_bytes=0, keep_manifests=0, tmp_grace_s=0.0)
        return real_get_value(self, entry)

    monkeypatch.setattr(pf.Store, "get_value", get_value)
    p = pf.Pipeline("second")
    p.add("g0", S.gen, g)
    p.add("s", S.scale, scale, x="g0")
    p.add("t", S.total, S.Tag(tag="t"), x="s")
    res = p.run(store=root)
    assert res.ok, res.errors
    assert res["t"] == float(np.sum(T.overlap_values((0,), 2.0)["s0"]))
