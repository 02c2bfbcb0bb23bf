"""Errors raised by the artifact store."""

from __future__ import annotations


class StoreError(RuntimeError):
    """Base class of store errors."""


class CorruptObjectError(StoreError):
    """An object's bytes do not match its recorded digest; it is never returned.

    ``digest`` names the object so the runner can quarantine it and recompute.
    """

    def __init__(self, message: str, digest: str | None = None) -> None:
        super().__init__(message)
        self.digest = digest

    def __reduce__(self) -> tuple:  # keep .digest across processes (dask / process pools)
        return (type(self), (str(self), self.digest))


class StoreLocationError(StoreError):
    """A path or URL cannot be used as a store (empty, not a store, from a newer physflow)."""


class MissingObjectError(StoreError):
    """A record or manifest references an object that is no longer in the store.

    ``digest`` names the object, so the runner can recompute the node that produced it.
    """

    def __init__(self, message: str, digest: str | None = None) -> None:
        super().__init__(message)
        self.digest = digest

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), self.digest))


class PickleNotAllowedError(StoreError):
    """A value was stored with pickle and the store was not opened with allow_pickle=True."""
