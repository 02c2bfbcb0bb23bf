"""torch tensors, jax arrays and cupy arrays: stored via host numpy, restored to their own type.

A tensor is encoded as ``["x", lib, {"dtype": ...}, <tree of its host numpy array>]``: the host
array goes through the ordinary array path (inline when small, a zarr object when large). dtypes
numpy lacks (torch/jax ``bfloat16``) travel as same-width unsigned integers and are viewed back.
Digest rules live in :mod:`physflow.core.optional_rules` (the same host arrays).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.array_rules import c_order
from ..core.optional_rules import HOSTS
from .codec_types import Codec
from .inline import to_tree


def _torch_restore(host: np.ndarray, meta: dict) -> Any:
    import torch

    dtype = getattr(torch, meta["dtype"])
    if dtype == torch.bfloat16:
        return torch.from_numpy(c_order(host).view(np.int16).copy()).view(dtype)
    return torch.from_numpy(np.array(host, copy=True))


def _is_torch(value: Any) -> bool:
    import torch

    # exact type: a subclass (nn.Parameter...) would come back as a plain Tensor
    return type(value) is torch.Tensor


def _jax_restore(host: np.ndarray, meta: dict) -> Any:
    import jax.numpy as jnp

    dtype = jnp.dtype(meta["dtype"])
    if host.dtype != dtype:
        host = host.view(dtype)
    return jnp.asarray(host, dtype=dtype)


def _is_jax(value: Any) -> bool:
    import jax

    return isinstance(value, jax.Array)


def _cupy_restore(host: np.ndarray, meta: dict) -> Any:
    import cupy

    return cupy.asarray(host)


def _is_cupy(value: Any) -> bool:
    import cupy

    return isinstance(value, cupy.ndarray)


LIBS = {
    "torch": (_is_torch, _torch_restore, ("torch",)),
    "jax": (_is_jax, _jax_restore, ("jax", "jaxlib")),
    "cupy": (_is_cupy, _cupy_restore, ("cupy", "cupy_backends")),
}


def codecs() -> list[tuple[Codec, tuple[str, ...]]]:
    """The tensor codecs and the top-level modules whose values they take."""
    found = []
    for lib, (matches, restore, modules) in LIBS.items():

        def encode(store: Any, value: Any, opts: Any, store_leaf: Any, lib: str = lib) -> list:
            array, dtype = HOSTS[lib](value)
            return ["x", lib, {"dtype": dtype}, to_tree(array, store_leaf)]

        def decode(store: Any, ref: list, lazy: bool = False, restore: Any = restore) -> Any:
            return restore(ref[3], ref[2])

        found.append((Codec(lib, matches, encode, decode), modules))
    return found
