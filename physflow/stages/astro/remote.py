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

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

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


def expand(url: str) -> str:
    """``url`` with ``${VAR}`` / ``$VAR`` taken from the environment. Expansion happens when a
    file is read, never in a cache key: with the content pinned by digest, where a file lives
    is not part of what it is (move an archive, point the variable at it, keys are unchanged)."""
    if "$" not in url:
        return url
    out = os.path.expandvars(url)
    if "$" in out:
        missing = re.findall(r"\$\{?(\w+)", out)
        raise ValueError(
            f"{url!r}: environment variable {', '.join(missing)} is not set; set it to the "
            "location of the files"
        )
    return out


def open_fs(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    import fsspec

    url = expand(url)
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
    url = expand(url)
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


def faulty_filesystem_class() -> type:
    """The ``faulty`` filesystem class (:mod:`.faulty`, which imports fsspec), registered with
    fsspec under ``faulty://``."""
    import fsspec

    from .faulty import FaultyFileSystem

    if fsspec.registry.get("faulty") is not FaultyFileSystem:
        fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)
    return FaultyFileSystem
