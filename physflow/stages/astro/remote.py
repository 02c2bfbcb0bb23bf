"""Reading input files over fsspec with bounded retries and integrity checks, and a fault-
injecting fsspec filesystem (``faulty://``) to test that path.

``fetch_verified(url, digest)`` reads the whole file, retrying disconnects and short or altered
reads a bounded number of times; bytes whose content digest differs from the pinned one are
never returned. ``FaultyFileSystem`` wraps any fsspec filesystem and injects latency,
disconnects, truncated reads and altered bytes, deterministically from a seed, the path and the
number of earlier reads of that path in the process (so a test never depends on timing). Use it
as a URL prefix::

    fsspec.config.conf["faulty"] = {"p_disconnect": 0.2, "p_truncate": 0.2, "seed": 1}
    fetch_verified("faulty::memory://survey/img_000.fits", digest="b3:...")

(``fsspec.config.conf`` or ``FSSPEC_FAULTY_*`` environment variables set the options, so the
fault profile is not part of any cache key).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import blake3

import physflow as pf

#: Errors of a read that may succeed when tried again.
TRANSIENT = (ConnectionError, TimeoutError, OSError)


#: Read attempts per URL by fetch_verified in this process (for loaders' statistics).
READS: Counter[str] = Counter()


def total_reads() -> int:
    return sum(READS.values())


class FetchError(OSError):
    """A remote file could not be read intact within the allowed attempts."""


def is_remote(url: str) -> bool:
    return "://" in url or "::" in url


def open_fs(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    import fsspec

    if "faulty" in url:
        faulty_filesystem_class()
    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def fetch_verified(
    url: str,
    digest: str = "",
    *,
    retries: int = 3,
    backoff_s: float = 0.0,
    validate: Callable[[bytes], None] | None = None,
    log: list[str] | None = None,
) -> bytes:
    """The bytes of ``url``, read whole, retried at most ``retries`` times after a transient
    error, a digest mismatch (when ``digest`` is pinned) or a ``validate`` failure (a
    ``ValueError``: e.g. a FITS file that ends early). Raises :class:`FetchError` listing every
    attempt; never returns bytes that failed a check. ``log`` collects one line per failure."""
    fs, path = open_fs(url)
    failures: list[str] = [] if log is None else log
    start = len(failures)
    for attempt in range(retries + 1):
        if attempt and backoff_s:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        READS[url] += 1
        try:
            data = fs.cat_file(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{url}: no such file") from None
        except TRANSIENT as exc:
            failures.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
            continue
        if digest:
            got = pf.digest(bytes(data))
            if got != digest:
                failures.append(
                    f"attempt {attempt + 1}: content digest {got} != pinned {digest} "
                    f"({len(data)} bytes)"
                )
                continue
        if validate is not None:
            try:
                validate(bytes(data))
            except ValueError as exc:
                failures.append(f"attempt {attempt + 1}: {exc}")
                continue
        return bytes(data)
    tried = "\n  ".join(failures[start:])
    raise FetchError(f"{url}: no intact read in {retries + 1} attempt(s):\n  {tried}")


def _fault_draw(seed: int, path: str, attempt: int) -> tuple[float, float]:
    """Two uniforms in [0, 1) from (seed, path, attempt): deterministic, process-independent."""
    h = blake3.blake3(f"{seed}\0{path}\0{attempt}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64, int.from_bytes(h[8:16], "little") / 2**64


def _base_class() -> type:
    from fsspec.implementations.chained import ChainedFileSystem

    return ChainedFileSystem


def make_faulty_class() -> type:
    """Build (once) the ``faulty`` fsspec filesystem class; fsspec is imported lazily."""
    base = _base_class()

    class FaultyFileSystem(base):  # type: ignore[misc, valid-type]
        """Wraps a filesystem; each whole-file read of a path draws at most one fault:
        ``disconnect`` (ConnectionResetError), ``truncate`` (a prefix of the bytes) or
        ``corrupt`` (one byte changed), with the given probabilities, after ``latency_s``."""

        protocol: ClassVar[str] = "faulty"
        #: A new instance per URL lookup (the fault profile is read from fsspec's config each
        #: time); the read counter per (seed, path), which drives the draws, is process-wide.
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
            import fsspec

            super().__init__(**options)
            total = p_disconnect + p_truncate + p_corrupt
            if not 0.0 <= total <= 1.0 or min(p_disconnect, p_truncate, p_corrupt) < 0:
                raise ValueError(
                    "faulty filesystem: p_disconnect + p_truncate + p_corrupt must be in [0, 1]"
                )
            self.fs = fs or fsspec.filesystem(target_protocol or "file", **(target_options or {}))
            self.latency_s = latency_s
            self.p = (p_disconnect, p_truncate, p_corrupt)
            self.seed = seed
            self.faults: Counter[str] = Counter()

        def _fault(self, path: str) -> tuple[str | None, float]:
            attempt = type(self).draws[(self.seed, path)]
            type(self).draws[(self.seed, path)] += 1
            type(self).total_reads[path] += 1
            u, v = _fault_draw(self.seed, path, attempt)
            edge = 0.0
            for name, p in zip(("disconnect", "truncate", "corrupt"), self.p):
                edge += p
                if u < edge:
                    self.faults[name] += 1
                    type(self).total_faults[name] += 1
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
                import io

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

    return FaultyFileSystem


_REGISTERED: list[type] = []


def faulty_filesystem_class() -> type:
    """The ``faulty`` filesystem class, registered with fsspec under ``faulty://``."""
    if not _REGISTERED:
        import fsspec

        cls = make_faulty_class()
        fsspec.register_implementation("faulty", cls, clobber=True)
        _REGISTERED.append(cls)
    return _REGISTERED[0]
