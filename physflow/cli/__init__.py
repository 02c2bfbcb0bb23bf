"""The ``physflow`` command and its presentation (progress, tables, reports)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
