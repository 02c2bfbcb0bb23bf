"""``StageContext``: what a stage asking for ``ctx`` gets -- streaming writers for big outputs.

A stage declares ``*, ctx: pf.StageContext`` and writes a large array chunk by chunk::

    @pf.stage(version="1", outputs=["field"])
    def simulate(cfg: Cfg, *, ctx: pf.StageContext):
        out = ctx.output_array("field", shape=(n, m), dtype="f4", chunks=(1024, m))
        for i in range(out.grid[0]):
            out.write_chunk((i, 0), compute_rows(i))
        return {"field": out}

Peak memory is about one chunk: each chunk is written (and hashed, when chunks arrive in C
order on slabs) as it comes. The object is published when the stage returns; if the stage fails,
:meth:`StageContext.abort` removes the partial data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..core.fingerprint import stage_fingerprint
from ..core.framing import merkle
from ..core.hashing import digest
from ..core.records import ActionRecord, OutputEntry
from .arrays import ChunkedWriter, zarr_supports
from .errors import CorruptObjectError, MissingObjectError

T = TypeVar("T")
#: fn -> its fingerprint (a function's source is read once per process).
_MEMO_FINGERPRINTS: dict[Any, str] = {}

if TYPE_CHECKING:
    from .store import Store


class OutputArray:
    """A chunked array being streamed into the store (returned by ``ctx.output_array``)."""

    def __init__(self, ctx: StageContext, name: str, writer: ChunkedWriter, tmp_rel: str) -> None:
        self._ctx = ctx
        self.name = name
        self._writer = writer
        self._tmp_rel = tmp_rel
        self._entry: OutputEntry | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._writer.layout.shape

    @property
    def dtype(self) -> np.dtype:
        return self._writer.dtype

    @property
    def chunks(self) -> tuple[int, ...]:
        return self._writer.layout.chunks

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of chunks along each axis."""
        return self._writer.layout.grid

    def chunk_indices(self) -> list[tuple[int, ...]]:
        """All chunk indices, in C order (the order that lets the digest stream)."""
        return list(self._writer.layout.indices())

    def region(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """The slices of the full array that chunk ``index`` covers."""
        return self._writer.layout.region(index)

    def write_chunk(self, index: tuple[int, ...], block: Any) -> None:
        self._check_open()
        self._writer.write_chunk(index, block)

    def __setitem__(self, key: Any, block: Any) -> None:
        self._check_open()
        self._writer[key] = block

    def _check_open(self) -> None:
        if self._entry is not None:
            raise ValueError(f"output array '{self.name}' is closed; it was already stored")

    def close(self) -> OutputEntry:
        """Finish and publish the array (idempotent); returns its :class:`OutputEntry`."""
        if self._entry is None:
            store = self._ctx.store
            try:
                try:
                    d, _meta = self._writer.finish()
                except ValueError as exc:
                    raise ValueError(f"{self._ctx._where()}, output '{self.name}': {exc}") from None
                if store.has_object(d):
                    store.backend.discard(self._tmp_rel)
                else:
                    store.backend.publish(self._tmp_rel, store.object_rel(d), "zarr.json")
            except BaseException:
                store.backend.discard(self._tmp_rel)
                raise
            self._entry = OutputEntry(
                digest=d,
                tree=["o", "array", d],
                objects=(d,),
                type_name="numpy.ndarray",
                dtype=self.dtype.str,
                shape=self.shape,
                nbytes=int(np.prod(self.shape)) * self.dtype.itemsize,
            )
            self._ctx._open.pop(id(self), None)
        return self._entry

    @property
    def digest(self) -> str:
        return self.close().digest

    def __enter__(self) -> OutputArray:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._ctx._discard(self)

    def __repr__(self) -> str:
        state = "stored" if self._entry is not None else "open"
        return f"<OutputArray {self.name} {self.shape} {self.dtype} chunks={self.chunks} {state}>"


class StageContext:
    """Per-task services for a stage: streaming array outputs into the store."""

    def __init__(self, store: Store, task: Any = None) -> None:
        self.store = store
        self.task = task
        self._open: dict[int, OutputArray] = {}
        self._all: dict[int, OutputArray] = {}
        self.memo_hits = 0
        self.memo_misses = 0

    def _where(self) -> str:
        if self.task is None:
            return "stage"
        return f"stage {self.task.stage.name} (node '{self.task.node_id}')"

    def output_array(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: Any,
        chunks: tuple[int, ...] | None = None,
        *,
        compress: bool | None = None,
    ) -> OutputArray:
        """Start streaming output ``name``: an array of ``shape`` and ``dtype`` written chunk by
        chunk (``chunks`` defaults to ~16 MiB slabs along axis 0). Return it from the stage."""
        if self.task is not None:
            names = self.task.stage.output_names
            if name not in names:
                raise ValueError(
                    f"{self._where()}: output_array('{name}') is not a declared output; "
                    f"declared outputs are {list(names)}"
                )
        dtype = np.dtype(dtype)
        if not zarr_supports(dtype):
            raise TypeError(
                f"{self._where()}: output_array('{name}') dtype {dtype} cannot be streamed; use a "
                "bool, integer, float or complex dtype"
            )
        if compress is None:
            stage_compress = self.task.stage.compress if self.task is not None else None
            compress = self.store.compress if stage_compress is None else stage_compress
        tmp_rel, sink = self.store.backend.new_sink()
        try:
            writer = ChunkedWriter(sink, "", tuple(shape), dtype, chunks, compress=compress)
        except BaseException:
            self.store.backend.discard(tmp_rel)
            raise
        out = OutputArray(self, name, writer, tmp_rel)
        self._open[id(out)] = out
        self._all[id(out)] = out
        return out

    def memo(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, cached in the store by ``fn``'s code and the arguments' digests.

        For work inside a stage that is worth caching on its own (one chunk of a long
        recording, a per-signature optimisation): when a later run changes the stage's config
        or inputs, pieces whose function and arguments are unchanged are reused. The key is
        (fn's fingerprint: qualified name + normalised source + ``fn.__physflow_deps__`` if
        set, the digest of every argument); the enclosing stage's config is not in it, so pass
        everything ``fn`` reads as an argument. Arguments must be digestible, results storable.
        ``memo_hits`` / ``memo_misses`` count lookups of this context.
        """
        key = memo_key(fn, args, kwargs)
        found = self._memo_lookup(key)
        if found is not _MISSING:
            self.memo_hits += 1
            return found  # type: ignore[return-value]
        self.memo_misses += 1
        started = time.time()
        value = fn(*args, **kwargs)
        entry = self.store.put_value(value)
        self.store.put_action(
            ActionRecord(
                key=key,
                stage=f"memo:{fn.__module__}:{fn.__qualname__}",
                fingerprint=_memo_fingerprint(fn),
                outputs={"value": entry},
                created=started,
                duration_s=time.time() - started,
            )
        )
        return value

    def _memo_lookup(self, key: str) -> Any:
        record = self.store.get_action(key)
        if record is None:
            return _MISSING
        try:
            return self.store.get_value(record.outputs["value"])
        except CorruptObjectError as exc:
            if exc.digest:  # never rewritten in place: move it aside so the recompute can land
                self.store.quarantine(exc.digest)
            return _MISSING
        except (KeyError, MissingObjectError):
            return _MISSING  # collected: compute again (and overwrite the record)

    def owns(self, value: Any) -> bool:
        return isinstance(value, OutputArray) and id(value) in self._all

    def entry_for(self, value: OutputArray) -> OutputEntry:
        return value.close()

    def _discard(self, out: OutputArray) -> None:
        if self._open.pop(id(out), None) is not None:
            self.store.backend.discard(out._tmp_rel)

    def abort(self) -> None:
        """Remove every unfinished output's partial data (called when the stage fails)."""
        for out in list(self._open.values()):
            self._discard(out)


_MISSING = object()


def _memo_fingerprint(fn: Callable[..., Any]) -> str:
    found = _MEMO_FINGERPRINTS.get(fn)
    if found is None:
        name = f"{fn.__module__}:{fn.__qualname__}"
        if "<lambda>" in name or "<locals>" in name:
            raise TypeError(
                f"ctx.memo({name}): memoised functions must be module-level functions "
                "(a lambda or nested function's closure is not part of the key)"
            )
        deps = tuple(getattr(fn, "__physflow_deps__", ()))
        found = stage_fingerprint(name, "memo", fn, deps)
        _MEMO_FINGERPRINTS[fn] = found
    return found


def memo_key(fn: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    """The action-cache key of ``fn(*args, **kwargs)`` (see :meth:`StageContext.memo`)."""
    return merkle("physflow.memo.v1", _memo_fingerprint(fn), digest((args, kwargs)))
