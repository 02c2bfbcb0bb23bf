"""``faulty://``: an fsspec filesystem that wraps another one and injects faults into reads.

Imported only through :func:`physflow.stages.astro.remote.faulty_filesystem_class` (it imports
fsspec). Each whole-file read draws at most one fault: ``disconnect`` (ConnectionResetError),
``truncate`` (a prefix of the bytes) or ``corrupt`` (one byte changed), with the configured
probabilities, after ``latency_s``. The draw is a hash of (seed, path, number of earlier reads
of that path in this process): deterministic, never timing-dependent.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from typing import Any, ClassVar

import blake3
import fsspec
from fsspec.implementations.chained import ChainedFileSystem


def fault_draw(seed: int, path: str, attempt: int) -> tuple[float, float]:
    """Two uniforms in [0, 1) from (seed, path, attempt)."""
    h = blake3.blake3(f"{seed}\0{path}\0{attempt}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64, int.from_bytes(h[8:16], "little") / 2**64


class FaultyFileSystem(ChainedFileSystem):
    """Wraps ``fs`` (or a filesystem of ``target_protocol``); options usually come from
    ``fsspec.config.conf["faulty"]``, so they are in no physflow cache key."""

    protocol: ClassVar[str] = "faulty"
    #: A new instance per URL lookup (the profile is read from fsspec's config each time); the
    #: read counter per (seed, path), which drives the draws, is process-wide.
    cachable = False
    #: Reads and injected faults over all instances (for tests and benchmarks).
    total_reads: ClassVar[Counter[str]] = Counter()
    total_faults: ClassVar[Counter[str]] = Counter()
    draws: ClassVar[Counter[tuple[int, str]]] = Counter()

    def __init__(
        self,
        fs: Any = None,
        target_protocol: str | None = None,
        target_options: dict | None = None,
        fo: str | None = None,
        latency_s: float = 0.0,
        p_disconnect: float = 0.0,
        p_truncate: float = 0.0,
        p_corrupt: float = 0.0,
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        probabilities = (float(p_disconnect), float(p_truncate), float(p_corrupt))
        if min(probabilities) < 0 or sum(probabilities) > 1:
            raise ValueError(
                "faulty filesystem: p_disconnect, p_truncate, p_corrupt must be >= 0 and sum "
                f"to at most 1, got {probabilities}"
            )
        self.fs = fs or fsspec.filesystem(target_protocol or "file", **(target_options or {}))
        self.latency_s = float(latency_s)
        self.p = probabilities
        self.seed = int(seed)

    def _fault(self, path: str) -> tuple[str | None, float]:
        cls = type(self)
        attempt = cls.draws[(self.seed, path)]
        cls.draws[(self.seed, path)] += 1
        cls.total_reads[path] += 1
        u, v = fault_draw(self.seed, path, attempt)
        edge = 0.0
        for name, p in zip(("disconnect", "truncate", "corrupt"), self.p):
            edge += p
            if u < edge:
                cls.total_faults[name] += 1
                return name, v
        return None, v

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kw: Any) -> bytes:
        if self.latency_s:
            time.sleep(self.latency_s)
        fault, v = self._fault(path)
        if fault == "disconnect":
            raise ConnectionResetError(f"injected disconnect reading {path}")
        data = bytes(self.fs.cat_file(path, start=start, end=end, **kw))
        if fault == "truncate" and data:
            return data[: int(v * len(data))]
        if fault == "corrupt" and data:
            i = int(v * len(data))
            return data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1 :]
        return data

    def _open(self, path: str, mode: str = "rb", **kw: Any) -> Any:
        if "r" in mode:
            return io.BytesIO(self.cat_file(path))
        return self.fs._open(path, mode, **kw)

    def info(self, path: str, **kw: Any) -> Any:
        return self.fs.info(path, **kw)

    def ls(self, path: str, detail: bool = True, **kw: Any) -> Any:
        return self.fs.ls(path, detail=detail, **kw)

    def pipe_file(self, path: str, value: bytes, **kw: Any) -> None:
        self.fs.pipe_file(path, value, **kw)

    def rm_file(self, path: str) -> None:
        self.fs.rm_file(path)
