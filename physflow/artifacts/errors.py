"""Errors raised by the artifact store."""


class StoreError(RuntimeError):
    """Base class of store errors."""


class CorruptObjectError(StoreError):
    """An object's bytes do not match its recorded digest; it is never returned."""


class MissingObjectError(StoreError):
    """A record or manifest references an object that is no longer in the store."""
