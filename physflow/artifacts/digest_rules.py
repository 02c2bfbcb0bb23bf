"""Digest rules of optional libraries' types, loaded the first time such a value is hashed.

:mod:`physflow.pipeline.hashing` calls :func:`load` (through ``register_lazy_rules``) with the
top-level module name of an unknown type, so ``import physflow`` never imports torch or xarray.
"""

from __future__ import annotations


def load(module: str) -> None:
    """Register the digest rules for types from ``module`` (torch, jax, jaxlib, cupy, xarray)."""
    if module == "xarray":
        from .xarray_codec import register_digest_rules

        register_digest_rules()
        return
    from .tensors import DIGEST_RULE_LOADERS

    loader = DIGEST_RULE_LOADERS.get(module)
    if loader is not None:
        loader()


MODULES = ("torch", "jax", "jaxlib", "cupy", "xarray")
