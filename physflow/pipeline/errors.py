"""Errors of the engine layer (kept apart so every pipeline module can raise them)."""

from __future__ import annotations


class PipelineError(ValueError):
    """A pipeline is malformed; the message names the node and says how to fix it."""
