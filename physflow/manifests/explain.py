"""Why did a node run again? Reasons read from two run manifests (this run and the one before).

A node's cache key covers its stage fingerprint, config digest, input digests and (for stages
with ``rng``) its seed, and every one of those is recorded per node, with the fingerprint's
parts per stage (``RunManifest.stages``). So comparing a node's record with its record in the
previous run names the cause: config fields (old -> new), an input whose digest changed (and
the upstream node's own reason), the stage's version, source or a dependency, the seed; and
when the key is the same, the stored result was gone (evicted by gc, or quarantined as
corrupt) or the earlier run had failed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from .schema import NodeRecord, RunManifest, StageInfo


class _Head(msgspec.Struct):
    """The few header fields needed to find runs (the rest of the file is skipped)."""

    pipeline: str = ""
    started: float = 0.0
    kind: str = "run"


def run_manifests(directory: str | Path, pipeline: str | None = None) -> list[tuple[float, Path]]:
    """(started, path) of the run manifests in ``directory`` (optionally of one pipeline),
    oldest first. Scan manifests are left out."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.endswith(".json") or entry.name.startswith("scan-"):
            continue
        try:
            head = msgspec.json.decode(Path(entry.path).read_bytes(), type=_Head)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            continue
        if head.kind == "run" and (pipeline is None or head.pipeline == pipeline):
            found.append((head.started, Path(entry.path)))
    return sorted(found)


def previous_run(directory: str | Path, current: RunManifest) -> Path | None:
    """The last run of the same pipeline that started before ``current``."""
    earlier = [p for t, p in run_manifests(directory, current.pipeline) if t < current.started]
    return earlier[-1] if earlier else None


# -- diffs ---------------------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and not value.get("__array__"):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _show(value: Any) -> str:
    if isinstance(value, dict) and value.get("__array__"):
        return f"array {value['dtype']}{value['shape']} {value['digest'][:11]}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def config_changes(old: dict | None, new: dict | None) -> list[str]:
    """``["sigma 0.1 -> 0.5", ...]`` for every field that differs."""
    a, b = _flat(old or {}), _flat(new or {})
    changes = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            changes.append(f"{key} added ({_show(b[key])})")
        elif key not in b:
            changes.append(f"{key} removed (was {_show(a[key])})")
        elif a[key] != b[key] or type(a[key]) is not type(b[key]):
            changes.append(f"{key} {_show(a[key])} -> {_show(b[key])}")
    return changes


def code_changes(old: StageInfo | None, new: StageInfo | None) -> list[str]:
    """What about a stage's fingerprint changed (name, version, source, a dependency)."""
    if old is None or new is None:
        return ["stage code changed (fingerprint differs; no details recorded)"]
    found = []
    if old.name != new.name:
        found.append(f"stage {old.name} -> {new.name}")
    if old.version != new.version:
        found.append(f"version {old.version!r} -> {new.version!r}")
    if old.source != new.source:
        found.append(f"source of {new.name.rpartition(':')[2] or new.name} changed")
    for label in sorted(set(old.deps) | set(new.deps)):
        if label not in old.deps:
            found.append(f"dependency {label} added")
        elif label not in new.deps:
            found.append(f"dependency {label} removed")
        elif old.deps[label] != new.deps[label]:
            found.append(f"dependency {label} changed")
    if old.outputs != new.outputs:
        found.append(f"outputs {old.outputs} -> {new.outputs}")
    return found or ["stage fingerprint changed (physflow's fingerprint rules differ)"]


def _seed_text(seed: list[int] | None) -> str:
    return "none" if not seed else str(seed[0])


# -- explaining one node ------------------------------------------------------------------


class Explainer:
    """Explains the nodes of ``current`` against ``previous`` (None: no earlier run)."""

    def __init__(
        self,
        current: RunManifest,
        previous: RunManifest | None,
        quarantined: set[str] | None = None,
    ) -> None:
        self.current, self.previous = current, previous
        self.now = {n.id: n for n in current.nodes}
        self.before = {n.id: n for n in previous.nodes} if previous is not None else {}
        self.quarantined = quarantined or set()
        self._memo: dict[str, list[str]] = {}

    def explain(self, node_id: str) -> list[str]:
        """One or more reasons, most direct first."""
        if node_id not in self._memo:
            self._memo[node_id] = self._reasons(node_id)
        return self._memo[node_id]

    def summary(self, node_id: str) -> str:
        return "; ".join(self.explain(node_id))

    def cause(self, node_id: str) -> str:
        """Why ``node_id``'s result differs from the previous run's (hit or not)."""
        rec, old = self.now.get(node_id), self.before.get(node_id)
        if rec is None or old is None:
            return "new node"
        if old.key != rec.key:
            return "; ".join(self._changes(old, rec))
        return "same key, but recomputed with different bytes: is the stage deterministic?"

    def _reasons(self, node_id: str) -> list[str]:
        rec = self.now[node_id]
        if rec.status == "hit":
            return ["hit: same key as a stored result, reused"]
        if rec.status in ("skipped", "cancelled"):
            error = rec.error or "an upstream node failed or the run stopped"
            return [error if error.startswith(rec.status) else f"{rec.status}: {error}"]
        if self.previous is None:
            why = [f"no earlier run of pipeline '{self.current.pipeline}' in this store"]
        elif node_id not in self.before:
            why = [f"new node (not in run {self.previous.run_id})"]
        else:
            old = self.before[node_id]
            why = self._same_key(old, rec) if old.key == rec.key else self._changes(old, rec)
        if rec.status == "failed":
            why.append(f"then it failed: {rec.error or '?'}")
        return why

    def _same_key(self, old: NodeRecord, rec: NodeRecord) -> list[str]:
        run = self.previous.run_id if self.previous is not None else "?"
        if old.status == "failed":
            return [f"it failed in run {run}, so there was no stored result to reuse"]
        if old.status not in ("hit", "miss"):
            return [f"it did not run in run {run} ({old.status}), so nothing was stored"]
        digests = [d for info in old.outputs.values() for d in (info.objects or [info.digest])]
        bad = [d for d in digests if d.partition(":")[2] in self.quarantined]
        if bad:
            return [
                f"same key as in run {run}, but its stored output {bad[0][:15]}... was corrupt "
                "(failed its digest check and was quarantined), so it was recomputed"
            ]
        if self.previous is not None and self.previous.store != self.current.store:
            return [f"run {run} used another store ({self.previous.store})"]
        return [
            f"same key as in run {run} (nothing it depends on changed), but the stored result "
            "was gone: its record or objects were removed (evicted by 'physflow cache gc', or "
            "deleted by 'cache verify'), so it was recomputed"
        ]

    def _changes(self, old: NodeRecord, rec: NodeRecord) -> list[str]:
        why = []
        if old.fingerprint != rec.fingerprint:
            prev = self.previous.stages.get(old.fingerprint or "") if self.previous else None
            info = self.current.stages.get(rec.fingerprint or "")
            why.append("stage code changed: " + ", ".join(code_changes(prev, info)))
        if old.config_digest != rec.config_digest:
            changes = config_changes(old.config, rec.config)
            why.append(
                "config changed: " + ", ".join(changes)
                if changes
                else "config changed (its class or types differ; the values read the same)"
            )
        why.extend(self._input_changes(old, rec))
        if (old.seed or None) != (rec.seed or None):
            seeds = f"{_seed_text(old.seed)} -> {_seed_text(rec.seed)}"
            why.append(f"random seed changed: run seed {seeds}")
        if not why:
            env_old = self.previous.environment.physflow if self.previous else "?"
            why.append(
                "its cache key changed although config, inputs, code and seed did not "
                f"(physflow {env_old} -> {self.current.environment.physflow}?)"
            )
        return why

    def _input_changes(self, old: NodeRecord, rec: NodeRecord) -> list[str]:
        why = []
        for name in sorted(set(old.inputs) | set(rec.inputs)):
            if name not in old.inputs:
                why.append(f"input '{name}' is new (from {rec.input_refs.get(name, '?')})")
                continue
            if name not in rec.inputs:
                why.append(f"input '{name}' was removed")
                continue
            if old.inputs[name] == rec.inputs[name]:
                continue
            src_old, src = old.input_refs.get(name, "?"), rec.input_refs.get(name, "?")
            if src_old != src:
                why.append(f"input '{name}' now comes from '{src}' (was '{src_old}')")
                continue
            upstream = src.partition(".")[0]
            why.append(f"input '{name}' changed because '{src}' changed ({self.cause(upstream)})")
        return why


def quarantined_digests(store: str | None) -> set[str]:
    """Hex digests of the objects moved to ``quarantine/`` (their names start with the hex)."""
    if not store:
        return set()
    try:
        from ..artifacts.store import open_store

        names = open_store(store).backend.listdir("quarantine")
    except Exception:
        return set()
    return {name.partition("-")[0] for name in names}


def explain_run(current: RunManifest, previous: RunManifest | None) -> Explainer:
    """An :class:`Explainer` for ``current`` with the store's quarantine as evidence."""
    return Explainer(current, previous, quarantined_digests(current.store))
