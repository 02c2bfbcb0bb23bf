"""Reading run manifests: nodes, outputs and the values themselves, without knowing the codecs.

``load_manifest(path).open("node.output")`` looks the output up in the action record named by
the node's key (small values live inline there) and loads it from the store; arrays can be
opened lazily as dask arrays over the stored zarr object. A value whose objects were removed
(by gc) raises :class:`~physflow.artifacts.errors.MissingObjectError` naming the node and what
to do, never a half-read value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..artifacts.errors import MissingObjectError
from ..core.records import OutputEntry
from ..core.refs import is_single
from ..core.suggest import did_you_mean
from .schema import NodeRecord, OutputInfo, RunManifest
from .sealing import DamagedManifestError, ManifestError, check_seal

if TYPE_CHECKING:
    from ..artifacts.store import Store
    from ..core.records import OutputEntry


def _store_for(path: Path, manifest: RunManifest) -> str:
    """The store a manifest belongs to: the directory it sits in, else the recorded location."""
    parent = path.resolve().parent
    if parent.name == "manifests" and (parent.parent / "objects").is_dir():
        return str(parent.parent)
    return manifest.store


class Manifest:
    """A loaded run manifest (``.manifest`` is the :class:`RunManifest` Struct)."""

    def __init__(self, manifest: RunManifest, path: str, store: Store | str | None = None) -> None:
        self.manifest = manifest
        self.path = path
        self._store_arg = store
        self._store: Store | None = None
        self.nodes: dict[str, NodeRecord] = {n.id: n for n in manifest.nodes}

    def __getattr__(self, name: str) -> Any:
        # run_id, pipeline, seed, status, environment, ... straight from the Struct
        if name.startswith("_") or name == "manifest":
            raise AttributeError(name)
        return getattr(self.manifest, name)

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"<Manifest {m.run_id} {m.pipeline!r} {m.status}: {len(self.nodes)} nodes, "
            f"{m.hits} hits, {m.misses} misses, {m.failed} failed>"
        )

    @property
    def store(self) -> Store:
        if self._store is None:
            from ..artifacts.store import Store, open_store

            arg = self._store_arg
            self._store = (
                open_store(arg)
                if arg is not None
                else Store(_store_for(Path(self.path), self.manifest))
            )
        return self._store

    def node(self, node_id: str) -> NodeRecord:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise KeyError(
                f"manifest {self.path} has no node '{node_id}'.{did_you_mean(node_id, self.nodes)} "
                f"Nodes: {', '.join(self.nodes)}"
            ) from None

    def outputs(self, node_id: str) -> dict[str, OutputInfo]:
        """Digest, type, dtype, shape, units (and scalar value) of each output of a node."""
        return dict(self.node(node_id).outputs)

    def metrics(self, node_id: str | None = None) -> dict[str, float]:
        """Scalar metrics of one node, or of all nodes as ``{"node.metric": value}``."""
        if node_id is not None:
            return dict(self.node(node_id).metrics)
        return {f"{n.id}.{k}": v for n in self.manifest.nodes for k, v in n.metrics.items()}

    def digests(self) -> dict[str, str]:
        """``{"node.output": digest}`` for every output in the run."""
        return {f"{n.id}.{k}": o.digest for n in self.manifest.nodes for k, o in n.outputs.items()}

    def _entry(self, record: NodeRecord, output: str) -> OutputEntry:
        info = record.outputs[output]
        action = self.store.get_action(record.key) if record.key else None
        if action is not None and output in action.outputs:
            entry = action.outputs[output]
            if entry.digest == info.digest:
                return entry
        # The record is gone or was replaced: a lone array object can still be opened by digest.
        if info.objects == [info.digest] and info.dtype is not None:
            shape = tuple(info.shape) if info.shape is not None else None
            return OutputEntry(
                digest=info.digest,
                tree=["o", "array", info.digest],
                objects=(info.digest,),
                type_name=info.type,
                dtype=info.dtype,
                shape=shape,
                nbytes=info.nbytes,
            )
        raise MissingObjectError(
            f"output '{record.id}.{output}' of run {self.manifest.run_id} is no longer in the "
            f"store at {self.store.location} (its record {record.key} was removed, probably by "
            "gc). Re-run the spec to recompute it."
        )

    def _check_objects(self, record: NodeRecord, output: str, entry: OutputEntry) -> None:
        missing = [d for d in entry.objects if not self.store.has_object(d)]
        if missing:
            raise MissingObjectError(
                f"output '{record.id}.{output}' of run {self.manifest.run_id} references "
                f"object {missing[0]} which is no longer in the store at {self.store.location} "
                "(removed by gc?). Re-run the spec to recompute it."
            )

    def open(self, ref: str, *, lazy: bool = False) -> Any:
        """The value of ``"node"`` or ``"node.output"``.

        ``lazy=True`` returns arrays as dask arrays over the stored chunks (read and verified
        when computed) and xarray values backed by dask; other values load as usual.
        """
        node_id, _, output = ref.partition(".")
        record = self.node(node_id)
        if record.status in ("failed", "skipped", "cancelled") or not record.outputs:
            raise KeyError(f"node '{node_id}' has no outputs in this run (status {record.status})")
        if not output:
            if is_single(record.outputs):
                output = "value"
            else:
                return {name: self.open(f"{node_id}.{name}", lazy=lazy) for name in record.outputs}
        if output not in record.outputs:
            raise KeyError(
                f"node '{node_id}' has no output '{output}'.{did_you_mean(output, record.outputs)} "
                f"Outputs: {', '.join(record.outputs)}"
            )
        entry = self._entry(record, output)
        self._check_objects(record, output, entry)
        if lazy:
            from ..artifacts.lazy import open_lazy

            return open_lazy(self.store, entry)
        return self.store.get_value(entry)

    def open_xarray(self, ref: str) -> Any:
        """An array output as a lazy ``xarray.DataArray`` (dims ``dim_0..``; units in attrs)."""
        import xarray as xr

        node_id, _, output = ref.partition(".")
        array = self.open(ref, lazy=True)
        info = self.node(node_id).outputs.get(output or "value")
        attrs = {"digest": info.digest} if info else {}
        if info is not None and info.units:
            attrs["units"] = info.units
        return xr.DataArray(array, name=ref, attrs=attrs)


def read_manifest(path: str | os.PathLike[str]) -> RunManifest:
    """Decode and validate a run manifest file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such manifest file") from None
    try:
        check_seal(data)
    except DamagedManifestError as exc:
        raise ManifestError(f"{p}: {exc}") from None
    try:
        return msgspec.json.decode(data, type=RunManifest, strict=False)  # "nan" metrics
    except msgspec.ValidationError as exc:
        raise ManifestError(f"{p}: not a physflow run manifest: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ManifestError(f"{p}: not valid JSON: {exc}") from None


def load_manifest(path: str | os.PathLike[str], store: Store | str | None = None) -> Manifest:
    """Open a run manifest; values are read from ``store`` (default: the store it lives in)."""
    return Manifest(read_manifest(path), str(path), store)


def _looks_like_path(ref: str) -> bool:
    return ref.endswith(".json") or "/" in ref or os.sep in ref or ref.startswith(".")


def find_manifest(ref: str, store: str | None = None) -> Path:
    """A manifest path from a path, or a run id (prefix) in ``store``'s manifests/.

    A ``ref`` that looks like a path (a separator, or ``.json``) and does not exist is reported
    as a missing file; run ids are matched by prefix without glob patterns, so no character in
    ``ref`` is special.
    """
    p = Path(ref)
    if p.is_file():
        return p
    if p.is_dir():
        raise ManifestError(f"{ref}: is a directory, not a manifest file")
    if not ref or _looks_like_path(ref):
        raise ManifestError(f"{ref}: no such manifest (the file does not exist)")
    from ..artifacts.store import default_store_path

    root = Path(store or default_store_path()) / "manifests"
    try:
        names = sorted(f.name for f in os.scandir(root) if f.name.endswith(".json"))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    matches = [root / n for n in names if n.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ManifestError(f"{ref}: no such manifest (no file, and no run id in {root})")
    raise ManifestError(f"{ref}: ambiguous run id; matches {', '.join(m.stem for m in matches)}")


def latest_manifest(store: str | None = None) -> Path | None:
    from ..artifacts.store import default_store_path

    root = Path(store or default_store_path()) / "manifests"
    files = sorted(root.glob("*.json"), key=lambda f: f.stat().st_mtime) if root.is_dir() else []
    return files[-1] if files else None
