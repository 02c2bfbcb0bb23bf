"""A real S3-API server (moto's) in its own process, on a free localhost port.

Run as ``python -m tests.artifacts.remote.s3_server PORTFILE``: it binds 127.0.0.1 on a free
port, writes the port to PORTFILE and serves until terminated. moto checks a conditional write
(``If-None-Match``/``If-Match``) and then stores the object in two steps without a lock, so two
concurrent requests could both pass the check; real S3 decides them atomically. Requests that
change objects are therefore serialised here (reads stay concurrent), which gives the server
the atomicity real S3 has -- the protocol itself is moto's, unmodified.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

MUTATING = frozenset({"PUT", "POST", "DELETE"})


class _Serialised:
    """WSGI middleware: one mutating request at a time (atomic conditional writes)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") not in MUTATING:
            return self.app(environ, start_response)
        length = environ.get("CONTENT_LENGTH")
        if length:  # receive the body first: uploads overlap, only the commits are serialised
            environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(int(length)))
        with self.lock:
            # materialise the response inside the lock: the write is complete when it returns
            return list(self.app(environ, start_response))


def serve(port_file: str) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = _Serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    tmp = f"{port_file}.part"
    Path(tmp).write_text(str(port))
    os.replace(tmp, port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


class S3Server:
    """Start/stop the server process; ``endpoint`` is its http://127.0.0.1:PORT URL."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.process: subprocess.Popen | None = None
        self.endpoint = ""

    def start(self, timeout: float = 60.0) -> S3Server:
        port_file = self.workdir / "s3-port"
        port_file.unlink(missing_ok=True)  # a stale one from an earlier server
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env.update(HOME=str(self.workdir), AWS_ACCESS_KEY_ID="physflow", AWS_SECRET_ACCESS_KEY="x")
        root = Path(__file__).resolve().parents[3]
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
        log = open(self.workdir / "s3-server.log", "wb")  # noqa: SIM115 (kept for the process)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.artifacts.remote.s3_server", str(port_file)],
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the S3 test server did not start; see {self.workdir / 's3-server.log'}"
                )
            time.sleep(0.05)
        port = int(port_file.read_text())
        self.endpoint = f"http://127.0.0.1:{port}"
        _wait_port(port, deadline)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _wait_port(port: int, deadline: float) -> None:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    serve(sys.argv[1])
