"""A real S3-API server process (moto's, over HTTP on localhost) for the shared-store tests;
each test gets a fresh bucket. No AWS settings of the machine leak in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CREDENTIALS = {"key": "physflow-test", "secret": "physflow-test-secret"}


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    for name in ("moto", "obstore", "boto3", "werkzeug"):
        pytest.importorskip(name)
    from .s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3-server")).start()
    yield server
    server.stop()


class Bucket:
    """One bucket on the test server, with raw access (boto3) for what tests do behind
    physflow's back: flipping bytes on the server, listing keys."""

    def __init__(self, endpoint: str, name: str) -> None:
        import boto3

        self.endpoint = endpoint
        self.name = name
        self.options = {**CREDENTIALS, "endpoint_url": endpoint}
        self.raw = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"],
            region_name="us-east-1",
        )
        self.raw.create_bucket(Bucket=name)

    def url(self, prefix: str = "store") -> str:
        return f"s3://{self.name}/{prefix}"

    def store(self, prefix: str = "store", **kwargs):
        import physflow as pf

        return pf.Store(self.url(prefix), storage_options=dict(self.options), **kwargs)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.raw.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.raw.get_object(Bucket=self.name, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.raw.put_object(Bucket=self.name, Key=key, Body=data)

    def flip(self, key: str, at: int = 0) -> None:
        """Flip one bit of a stored object on the server (a disk fault, a bad copy)."""
        data = bytearray(self.get(key))
        data[at % len(data)] ^= 0x01
        self.put(key, bytes(data))


@pytest.fixture
def bucket(s3_server) -> Bucket:
    return Bucket(s3_server.endpoint, f"pf-{uuid.uuid4().hex[:16]}")


def worker(*args: str, **kwargs) -> subprocess.Popen:
    """A worker process (tests/artifacts/remote/remote_worker.py) with a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.artifacts.remote.remote_worker", *args],
        cwd=ROOT,
        env=env,
        **kwargs,
    )


def spec(bucket: Bucket, cache_dir: Path | None = None, prefix: str = "store") -> str:
    """How a worker process opens the store (JSON on its command line)."""
    return json.dumps(
        {"url": bucket.url(prefix), "options": bucket.options, "cache_dir": str(cache_dir or "")}
    )
