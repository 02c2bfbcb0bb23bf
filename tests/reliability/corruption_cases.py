"""The corruption matrix's store, its files by kind, and the damage done to each.

The pristine store holds one run and one 2-point scan of :func:`matrix_pipeline`: a single-chunk
array, a streamed 4-chunk array, a blob, an xarray Dataset (group + variables + attributes),
scalars and a small array inline in records. :func:`kinds` sorts every file into a kind;
:func:`damages` lists what is done to a file: one-bit-like flips at fixed and seeded positions,
flips aimed at meaningful bytes (a digit of a shape or of a stored scalar, a digest, a unit, a
scalar's IEEE bytes inside a record), truncation and deletion.
"""

from __future__ import annotations

import json
import random
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import physflow as pf

from . import crash_stages as S

SCAN_AXES = {"g.seed": [0, 1]}


def matrix_pipeline(per_node: bool = False) -> pf.Pipeline:
    """The store's pipeline. ``per_node``: with one more node and under another name, so no
    plan record is replayed or used for hints: each node's record is read (and checked)."""
    p = pf.Pipeline("matrix-per-node" if per_node else "matrix", seed=0)
    if per_node:
        p.add("extra", S.total, S.Tag(tag="extra"), x="g")
    p.add("g", S.gen, S.Gen(tag="g", seed=0, n=1 << 14))  # 128 KiB: one chunk
    p.add("t", S.total, S.Tag(tag="t"), x="g")  # a float inline in its record
    field = S.Field(tag="field", seed=7, rows=64, cols=64, chunk_rows=16)
    p.add("field", S.stream, field)  # 4 chunks + an int inline
    p.add("means", S.row_means, S.Tag(tag="means"), field="field.field")  # small inline array
    p.add("blob", S.to_blob, S.Tag(tag="blob"), x="g")  # 64 KiB of bytes
    p.add("ds", S.to_dataset, S.Tag(tag="ds"), x="g")  # a zarr group
    return p


def build_pristine(root: str, layout: str) -> None:
    store = pf.Store(root, actions=layout)
    matrix_pipeline().run(store=store).raise_on_failure()
    matrix_pipeline().scan(SCAN_AXES, collect=["t"], store=store)


def _codec(meta: dict) -> str:
    return meta.get("attributes", {}).get("physflow", {}).get("codec", "")


def _object_kind(obj: Path, path: Path) -> str:
    top = json.loads((obj / "zarr.json").read_text())
    codec = _codec(top)
    if codec == "xarray":
        if path.parent == obj:
            return "xarray group zarr.json"
        return "xarray variable " + ("zarr.json" if path.name == "zarr.json" else "chunk")
    name = "blob" if codec == "blob" else "array"
    return f"{name} {'zarr.json' if path.name == 'zarr.json' else 'chunk'}"


def kinds(root: Path, layout: str) -> dict[Path, str]:
    """Every file worth damaging, by kind. Objects, manifests and the stamp are damaged with
    the sqlite layout only (they are the same files in both); of objects and records, the
    run's (the scan's second point has more of the same kinds)."""
    out: dict[Path, str] = {}
    run_objects, run_keys = _run_entries(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).parts
        if layout == "files":
            if rel[0] == "actions" and rel[2] in run_keys:
                out[path] = "files record"
            elif rel[0] == "plans":
                out[path] = "plan pointer" if rel[1] == "latest" else "plan record"
        elif rel[0] == "objects" and rel[2] in run_objects:
            out[path] = _object_kind(root / "objects" / rel[1] / rel[2], path)
        elif rel[0] == "manifests":
            doc = json.loads(path.read_text())
            out[path] = "scan manifest" if "scan_id" in doc or "points" in doc else "run manifest"
        elif rel[0] in ("actions.sqlite", "actions.sqlite-wal"):
            out[path] = "sqlite database"
        elif rel[0] == "store.json":
            out[path] = "layout stamp"
    return _thin_chunks(out)


def run_manifest(root: Path) -> Path:
    """The run's manifest (the other one is the scan's)."""
    for m in sorted((root / "manifests").glob("*.json")):
        if "scan_id" not in json.loads(m.read_text()):
            return m
    raise FileNotFoundError(f"no run manifest in {root}/manifests")


def _run_entries(root: Path) -> tuple[set[str], set[str]]:
    """Hex names of the run's objects and record keys (the scan's are not included)."""
    objects: set[str] = set()
    keys: set[str] = set()
    for m in sorted((root / "manifests").glob("*.json")):
        doc = json.loads(m.read_text())
        if "nodes" in doc and "scan_id" not in doc:
            for node in doc["nodes"]:
                keys.add(node["key"].partition(":")[2])
                for out in node.get("outputs", {}).values():
                    objects.update(d.partition(":")[2] for d in out.get("objects", []))
    return objects, keys


def _thin_chunks(files: dict[Path, str]) -> dict[Path, str]:
    """Of an object's chunk files keep the first and the last (the others are alike)."""
    by_parent: dict[Path, list[Path]] = {}
    for path, kind in files.items():
        if kind.endswith("chunk"):
            by_parent.setdefault(path.parent.parent, []).append(path)
    drop = {p for paths in by_parent.values() for p in sorted(paths)[1:-1]}
    return {p: k for p, k in files.items() if p not in drop}


# -- damage --------------------------------------------------------------------------------------


def _subtle(byte: int) -> int:
    """A byte changed into one of the same class (digit->digit, hex letter->hex letter, other
    letters change case), so text formats often still parse: the hardest flips to notice."""
    c = chr(byte)
    if c.isdigit():
        return byte ^ 0x01
    if c in "abcdef":
        return byte ^ 0x07
    if c.isalpha():
        return byte ^ 0x20
    return byte ^ 0x01


_TEXT_TARGETS = [
    r'"shape":\s*\[(\d)',
    r'"units":\s*"(.)',
    r'"title":\s*"(.)',
    r'"value":\s*-?(\d)',
    r'"dimension_names":\s*\["(.)',
    r'"b3:[0-9a-f]{20}([0-9a-f])',
    r'"dtype":\s*"\w*?(\d)',
    r'"key":\s*"b3:[0-9a-f]{8}([0-9a-f])',
]


def _targets(data: bytes, scalars: list[float]) -> list[tuple[str, int]]:
    """Positions that mean something: digits of shapes and scalars, units, digests, and the
    last mantissa byte of each stored float scalar (msgpack big-endian) in binary files."""
    out = []
    text = data.decode("latin-1")
    for pattern in _TEXT_TARGETS:
        for k, m in enumerate(re.finditer(pattern, text)):
            if k == 3:  # the first three of each (e.g. a metric and two outputs' values)
                break
            out.append((f"at {pattern[:14]!r} #{k}", m.start(1)))
    for value in scalars:
        at = data.find(struct.pack(">d", value))
        if at >= 0:
            out.append((f"in float {value:.6g}", at + 7))
    return out


def damages(path: Path, scalars: list[float], seed: int) -> list[tuple[str, Callable[[], Any]]]:
    """(description, apply) for every damage done to ``path`` (each applied to a fresh copy)."""
    data = path.read_bytes()
    n = len(data)
    rng = random.Random(f"{seed}-{path.name}-{n}")
    positions = [("first byte", 0), ("middle byte", n // 2), ("last byte", n - 1)]
    positions.append(("random byte", rng.randrange(n)) if n else ("random byte", 0))
    positions += _targets(data, scalars)
    out: list[tuple[str, Callable[[], Any]]] = []
    seen = set()
    for label, at in positions:
        if n == 0 or at in seen:
            continue
        seen.add(at)
        out.append((f"flip {label} (@{at})", _flip(path, at)))
    out.append(("truncate to half", lambda: path.write_bytes(data[: n // 2])))
    out.append(("truncate to empty", lambda: path.write_bytes(b"")))
    out.append(("delete", path.unlink))
    return out


def _flip(path: Path, at: int) -> Callable[[], None]:
    def apply() -> None:
        data = bytearray(path.read_bytes())
        data[at] = _subtle(data[at])
        path.write_bytes(bytes(data))

    return apply


def scalar_values(values: dict[str, Any]) -> list[float]:
    return [v for v in values.values() if isinstance(v, float)]
