"""Corruption matrix: every stored file kind damaged every way, read through every public path
(issue 12, reliability suite).

A pristine store (built in a child process, so the SQLite database is checkpointed and closed
as between runs) holds a run and a 2-point scan of ``matrix_pipeline``. For each file of each
kind (array chunks and zarr.json, blob chunk and zarr.json, xarray group zarr.json and its
variables, the SQLite database, files-layout records, plan records and plan pointers, run and
scan manifests, the layout stamp) and each damage of ``corruption_cases.damages`` (flips at
fixed, seeded and meaningful positions, truncation, deletion), a fresh copy is damaged and then
read through ``pf.load_manifest(p)``: ``open(ref)`` eager and lazy, and the scalars the
manifest itself carries (``outputs()``, ``metrics()``); ``physflow show``; two re-runs and
``res[...]`` (one with an extra node under another name, so no plan record is replayed and
every node's own record is read; one replaying); the scan; ``physflow cache verify``; and a
final re-run. Half the cases read first, half run first (a read heals what it finds corrupt,
so both orders matter).

Required: 0 values served that differ from ``crash_truth.matrix_values`` (plain numpy/xarray);
everything else is a recompute or a clear error (physflow's store/manifest errors, a
``KeyError`` naming a node or output, exit code 2 with one line); the CLI never shows a
traceback or an unexpected exception; after ``cache verify`` the store verifies clean and a
re-run returns every value right. Problems of the kinds in ``KNOWN`` would be open bugs
reproduced in test_found_bugs.py, counted and not failing (there are none); any other problem
fails the test.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

import physflow as pf

from . import corruption_cases as C
from . import crash_truth as T
from .counts import record

ROOT = Path(__file__).resolve().parents[2]
REFS = ["g", "t", "field.field", "field.rows", "means", "blob", "ds"]
LAZY = ["g", "field.field"]
#: problems of known bugs -> the test in test_found_bugs.py reproducing each (remove when fixed)
#: (both found so far -- edited manifest scalars, an empty actions.sqlite -- fixed in e0bf661)
KNOWN: dict[str, str] = {}
#: physflow's store errors: the CLI prints them in one line (exit 1), with a PHYSFLOW_DEBUG hint
STORE_ERRORS = ("StoreError", "CorruptObjectError", "MissingObjectError")


def _clear(exc: BaseException) -> bool:
    """An error a user can act on: a store or manifest error, or a lookup naming the node."""
    from physflow.manifests.reader import ManifestError

    if isinstance(exc, pf.StoreError | ManifestError):
        return True
    return isinstance(exc, KeyError) and any(w in str(exc) for w in ("node", "output"))


def _known(problem: str) -> str | None:
    return next((test for pattern, test in KNOWN.items() if re.search(pattern, problem)), None)


class Case:
    """One damaged copy: its reads, counted."""

    def __init__(self, root: Path, manifest: Path, truth: dict, scan_truth: list, name: str):
        self.root, self.manifest, self.truth, self.scan_truth = root, manifest, truth, scan_truth
        self.name, self.counts, self.problems = name, Counter(), []

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(f"{self.name}: {problem}")

    def served(self, ref: str, value: object, path: str) -> None:
        right = T.same(value, self.truth[ref])
        self.check(right, f"{path} served a wrong {ref}")
        self.counts["values right" if right else "served corrupt"] += 1

    def error(self, exc: BaseException, path: str) -> None:
        clear = _clear(exc)
        self.check(clear, f"{path} raised {type(exc).__name__}: {str(exc)[:200]}")
        self.counts["clear errors" if clear else "unclear errors"] += 1

    def reads(self) -> None:
        try:
            m = pf.load_manifest(self.manifest)
        except Exception as exc:
            return self.error(exc, "load_manifest")
        for ref in REFS:
            try:
                self.served(ref, m.open(ref), "open")
            except Exception as exc:
                self.error(exc, f"open({ref})")
        self.manifest_scalars(m)
        for ref in LAZY:
            try:
                self.served(ref, m.open(ref, lazy=True).compute(), "open(lazy)")
            except Exception as exc:
                self.error(exc, f"open({ref}, lazy)")
        return None

    def manifest_scalars(self, m: object) -> None:
        """Scalars the manifest itself carries (outputs' values, metrics)."""
        for ref, read in [
            ("t", lambda: m.outputs("t")["value"].value),
            ("t", lambda: m.metrics("t")["value"]),
            ("field.rows", lambda: m.outputs("field")["rows"].value),
        ]:
            try:
                self.served(ref, read(), "manifest scalar")
            except Exception as exc:
                self.error(exc, f"manifest scalar {ref}")

    def rerun(self, final: bool = False, per_node: bool = False) -> None:
        try:
            res = C.matrix_pipeline(per_node).run(store=self.root)
        except Exception as exc:
            return self.error(exc, "run")
        self.check(res.ok or not final, f"final run failed: {res.errors}")
        recomputed = [uid for uid in res.misses if uid != "extra"]  # extra: new, always runs
        self.counts["recomputed nodes"] += 0 if final else len(recomputed)
        for uid, err in res.errors.items():
            self.counts["failed nodes"] += 1
            self.check("Error" in err, f"node {uid} failed unclearly: {err[:200]}")
        for ref in REFS:
            if ref.partition(".")[0] in res.failed + res.skipped:
                continue
            try:
                self.served(ref, res[ref], "res[...]")
            except Exception as exc:
                self.error(exc, f"res[{ref!r}]")
        return None

    def scan(self) -> None:
        try:
            ds = C.matrix_pipeline().scan(C.SCAN_AXES, collect=["t"], store=self.root)
        except Exception as exc:
            return self.error(exc, "scan")
        for got, want in zip(ds["t"].values.ravel().tolist(), self.scan_truth, strict=True):
            if math.isnan(got):  # a failed point: its error is in the scan manifest
                self.counts["failed scan points"] += 1
            else:
                self.check(got == want, f"scan served t={got}, not {want}")
                self.counts["values right" if got == want else "served corrupt"] += 1
        return None


def _cli(case: Case, capsys, *argv: str) -> tuple[int, str]:
    from physflow.cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    case.check("Traceback" not in out + err, f"{argv[0]} printed a traceback")
    store_error = any(f"error: {name}:" in err for name in STORE_ERRORS)  # clear, exit 1
    unexpected = "PHYSFLOW_DEBUG" in err and not store_error
    case.check(not unexpected, f"{argv[0]}: unexpected error: {err.strip()[:200]}")
    case.check(code in (0, 1, 2), f"{argv[0]} exited {code}")
    return code, out


def _show(case: Case, capsys) -> None:
    code, out = _cli(case, capsys, "show", str(case.manifest), "--store", str(case.root))
    if code != 0:
        case.counts["clear errors"] += 1
        return
    want = f"{case.truth['t']:.6g}"
    for line in out.splitlines():
        cells = line.split()
        if cells[:2] == ["t", "total"]:
            case.check(cells[-1] == want, f"show displays t={cells[-1]}, not {want}")
            case.counts["values right" if cells[-1] == want else "served corrupt"] += 1


def _run_case(case: Case, order: int, capsys) -> None:
    first = [case.reads, lambda: _show(case, capsys)]
    then = [lambda: case.rerun(per_node=True), case.rerun, case.scan]
    for step in (first + then) if order == 0 else (then + first):
        step()
    _cli(case, capsys, "cache", "verify", "--store", str(case.root))
    try:
        store = pf.Store(case.root)
    except Exception as exc:  # e.g. a damaged layout stamp: a clear error, every time
        return case.error(exc, "Store")
    report = store.verify(quarantine=False)
    case.check(report.ok, f"not clean after cache verify: {report}")
    case.rerun(final=True)
    return None


def _pristine(tmp_path: Path, layout: str) -> Path:
    root = tmp_path / "pristine"
    subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_worker", "build", str(root), layout],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )
    return root


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["sqlite", "files"])
def test_no_corrupt_value_is_ever_served(tmp_path, layout, capsys):
    pytest.importorskip("xarray")
    pristine = _pristine(tmp_path, layout)
    files = C.kinds(pristine, layout)
    truth = T.matrix_values(0)
    scan_truth = [truth["t"], T.matrix_values(1)["t"]]
    run_manifest = C.run_manifest(pristine)
    per_kind: Counter = Counter()
    totals: Counter = Counter()
    index, problems = 0, []
    for path, kind in files.items():
        rel = path.relative_to(pristine)
        for label, _ in C.damages(path, C.scalar_values(truth), seed=12):
            root = tmp_path / "case"
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(pristine, root)
            apply = dict(C.damages(root / rel, C.scalar_values(truth), seed=12))[label]
            apply()
            name = f"{kind} {rel}: {label}"
            case = Case(root, root / run_manifest.relative_to(pristine), truth, scan_truth, name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # damaged-database and manifest warnings
                _run_case(case, index % 2, capsys)
            per_kind[kind] += 1
            totals.update(case.counts)
            problems += case.problems
            index += 1
    record(f"corruption matrix ({layout})", cases=index, **totals)
    record(f"corruption matrix ({layout}) cases per kind", **per_kind)
    print(layout, index, dict(per_kind), dict(totals))
    print("\n".join(problems))
    known = Counter(_known(x) for x in problems)
    record(f"corruption matrix ({layout}) known-bug hits", **{k: v for k, v in known.items() if k})
    unknown = [x for x in problems if _known(x) is None]
    assert unknown == [], "\n".join(unknown)
