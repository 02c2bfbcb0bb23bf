"""The requests physflow makes to an object store (S3 and S3-compatible servers, GCS, Azure),
all through obstore, which sends real conditional headers.

Why obstore and not s3fs for writes: a create-only PUT must carry ``If-None-Match: *`` or it
silently becomes an overwrite. s3fs dropped it for one-shot uploads until 2025.7 (s3fs #973), and
its request wrapper still filters out keyword arguments the installed botocore does not know,
without an error -- the same silent overwrite with an older botocore. obstore maps
``mode="create"`` to ``If-None-Match: *`` and ``mode={"e_tag": ...}`` to ``If-Match``, and
fails loudly (``NotSupportedError``) where the store cannot do them. Whatever the client, the
backend also *probes* the server once per process (:func:`probe_conditional`): a client or
server that ignores the condition is detected, not trusted.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: URL schemes served by :class:`ObjectClient` (the rest go through fsspec).
OBJECT_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss"})

#: storage_options keys in s3fs's spelling -> obstore's S3 config keys.
_S3FS_KEYS = {
    "key": "access_key_id",
    "secret": "secret_access_key",
    "token": "session_token",
    "endpoint_url": "endpoint",
    "region_name": "region",
}


#: Reads at least this large are returned without a copy (chunk files; never JSON or records).
ZERO_COPY_BYTES = 1 << 20


class ConditionFailed(Exception):
    """An ``If-Match`` precondition did not hold (the object changed, or is gone)."""


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, bucket, prefix) of an object store URL."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path.strip("/")


def obstore_config(url: str, options: dict[str, Any] | None) -> tuple[dict, dict]:
    """(config, client_options) for obstore from fsspec-style ``storage_options``.

    s3fs's spellings (``key``, ``secret``, ``endpoint_url``, ``client_kwargs``) are accepted, so
    one ``storage_options`` dict works for both clients; obstore's own keys pass through.
    ``AWS_ENDPOINT_URL(_S3)`` is honoured as botocore honours it. Plain-http endpoints (a local
    test server) are allowed explicitly.
    """
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if name == "client_kwargs":
            for sub, subvalue in (value or {}).items():
                if sub in _S3FS_KEYS:
                    config[_S3FS_KEYS[sub]] = subvalue
        elif name == "anon":
            if value:
                config["skip_signature"] = True
        elif name == "client_options":
            client.update(value or {})
        elif name in _S3FS_KEYS:
            config[_S3FS_KEYS[name]] = value
        else:
            config[name] = value
    scheme = split_url(url)[0]
    if scheme in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if "endpoint" not in config and endpoint:
            config["endpoint"] = endpoint
        config.setdefault("region", os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        if str(config.get("endpoint", "")).startswith("http://"):
            client.setdefault("allow_http", True)
    return config, client


class ObjectClient:
    """Bytes by relative path under one bucket prefix; the only place that talks to the store."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        from obstore.store import from_url

        scheme, bucket, prefix = split_url(url)
        if not bucket:
            raise ValueError(f"{url!r}: an object store URL needs a bucket (s3://bucket/prefix)")
        config, client = obstore_config(url, options)
        root = f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"
        self.store = from_url(root, config=config or None, client_options=client or None)
        self.url = url

    def get(self, path: str) -> bytes:
        """The object's bytes; ``FileNotFoundError`` when absent. Large payloads come as a
        read-only memoryview of the received buffer (no copy of a chunk)."""
        import obstore

        data = obstore.get(self.store, path).bytes()
        return data.to_bytes() if len(data) < ZERO_COPY_BYTES else memoryview(data)  # type: ignore[return-value]

    def get_tagged(self, path: str) -> tuple[bytes, str | None]:
        """The object's bytes and ETag (for a later :meth:`put` with ``if_match``)."""
        import obstore

        result = obstore.get(self.store, path)
        return result.bytes().to_bytes(), result.meta.get("e_tag")

    def head(self, path: str) -> dict[str, Any] | None:
        import obstore

        try:
            return dict(obstore.head(self.store, path))
        except FileNotFoundError:
            return None

    def put(
        self,
        path: str,
        data: bytes | memoryview | Path,
        *,
        create: bool = False,
        if_match: str | None = None,
        multipart: bool = False,
    ) -> str | None:
        """Write an object whole; returns its ETag.

        ``create``: only if absent (``If-None-Match: *``), else ``FileExistsError``.
        ``if_match``: only if its ETag is still this one, else :class:`ConditionFailed`.
        """
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        mode: Any = "overwrite"
        if create:
            mode = "create"
        elif if_match is not None:
            mode = {"e_tag": if_match}
        try:
            result = obstore.put(
                self.store, path, data, mode=mode, use_multipart=multipart and mode == "overwrite"
            )
        except AlreadyExistsError:
            raise FileExistsError(path) from None
        except PreconditionError:
            raise ConditionFailed(path) from None
        except FileNotFoundError:
            if if_match is not None:  # the object is gone: the condition cannot hold
                raise ConditionFailed(path) from None
            raise
        return result.get("e_tag")

    def delete(self, paths: list[str]) -> None:
        import obstore

        if paths:
            obstore.delete(self.store, paths)

    def list(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under ``prefix`` (a "directory": give it without a trailing slash)."""
        import obstore

        for batch in obstore.list(self.store, prefix or None, chunk_size=1000):
            yield from batch

    def list_dir(self, prefix: str) -> tuple[list[str], list[dict[str, Any]]]:
        """(sub-"directories", objects) directly under ``prefix``."""
        import obstore

        found = obstore.list_with_delimiter(self.store, prefix or None)
        return list(found["common_prefixes"]), list(found["objects"])

    def copy(self, src: str, dst: str) -> None:
        import obstore

        obstore.copy(self.store, src, dst)


class FsspecProbeClient:
    """The probe's view of an fsspec filesystem (create-only and If-Match through s3fs)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def put(self, rel: str, data: bytes, *, create: bool = False, if_match: Any = None) -> None:
        path = self.backend.abspath(rel)
        if create:
            self.backend.fs.pipe_file(path, data, mode="create")
            return
        try:  # s3fs filters keyword arguments botocore does not know: the probe catches that
            self.backend.fs.call_s3("put_object", **_bucket_key(path), Body=data, IfMatch=if_match)
        except Exception as exc:
            text = f"{exc!r} {exc.__cause__!r}"
            if "PreconditionFailed" in text or "pre-condition" in text or " 412" in text:
                raise ConditionFailed(rel) from None
            raise

    def get(self, rel: str) -> bytes:
        return self.backend.read(rel)

    def delete(self, rels: list[str]) -> None:
        for rel in rels:
            self.backend.remove(rel)


def _bucket_key(path: str) -> dict[str, str]:
    bucket, _, key = path.partition("/")
    return {"Bucket": bucket, "Key": key}


def probe_conditional(client: Any, path: str) -> bool:
    """Whether create-only and compare-and-swap writes are really enforced here.

    Writes ``path`` create-only twice (the second must be refused and leave the first bytes),
    then with a wrong ETag (must be refused). A client that drops the condition (s3fs #973) or
    a server that ignores it both fail this probe; the store then falls back to check-then-write
    and says so (see :class:`~.remote.ObjectStoreBackend`).
    """
    honoured = False
    try:
        client.put(path, b"first", create=True)
        try:
            client.put(path, b"second", create=True)
        except FileExistsError:
            honoured = client.get(path) == b"first"
        if honoured:
            try:
                client.put(path, b"third", if_match='"physflow-no-such-etag"')
                honoured = False
            except ConditionFailed:
                honoured = client.get(path) == b"first"
    except Exception as exc:  # NotSupportedError and friends: no conditional writes here
        if type(exc).__name__ not in ("NotSupportedError", "GenericError"):
            raise
        honoured = False
    finally:
        with contextlib.suppress(Exception):  # best effort: gc removes old temp entries
            client.delete([path])
    return honoured
