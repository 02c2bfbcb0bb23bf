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

from typing import TYPE_CHECKING, Any

import numpy as np

from .arrays import ChunkedWriter, zarr_supports
from .records import OutputEntry

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
