"""Capturing the environment a run happened in (cheap: computed once per process)."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys

from .schema import Environment

KEY_PACKAGES = (
    "numpy",
    "msgspec",
    "blake3",
    "zarr",
    "scipy",
    "xarray",
    "dask",
    "distributed",
    "torch",
    "jax",
    "opticommpy",
    "astropy",
    "pyyaml",
    "phys-pipeline",
    "phys-sims-utils",
)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(cwd: str) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def capture_environment(cwd: str | None = None) -> Environment:
    """The environment of a run started in ``cwd`` (default: the current directory).

    Captured once per process and directory (git is asked twice, ~5 ms): a run inside a
    harness loop must not pay that per evaluation. The dirty flag is therefore the state of
    the working tree when the first run of the process started there.
    """
    return _capture(os.path.abspath(cwd or os.getcwd()))


@functools.lru_cache(maxsize=16)
def _capture(cwd: str) -> Environment:
    commit, dirty = _git(cwd)
    packages = {name: v for name in KEY_PACKAGES if (v := _version(name)) is not None}
    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        host=socket.gethostname(),
        physflow=_version("physflow") or "unknown",
        packages=packages,
        git_commit=commit,
        git_dirty=dirty,
        cwd=cwd,
        argv=list(sys.argv),
    )
