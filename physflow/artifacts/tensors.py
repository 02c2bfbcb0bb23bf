"""torch tensors, jax arrays and cupy arrays: stored via host numpy, restored to their own type.

A tensor is encoded as ``["x", lib, {"dtype": ...}, <tree of its host numpy array>]``: the host
array goes through the ordinary array path (inline when small, a zarr object when large). dtypes
numpy lacks (torch/jax ``bfloat16``) travel as same-width unsigned integers and are viewed back.
Digests are type-tagged (``torch.Tensor`` + dtype + the host array digest), so a tensor and the
equal numpy array never share a digest; the device is not part of the digest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pipeline.hashing import _str_bytes, register_digest_rule
from .arrays import c_order as _c_order

_UINT_OF_WIDTH = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


# -- torch ---------------------------------------------------------------------------------------


def _torch_host(value: Any) -> tuple[np.ndarray, str]:
    import torch

    t = value.detach().resolve_conj().resolve_neg()  # lazy conj/neg bits: numpy() refuses
    if t.device.type != "cpu":
        t = t.cpu()
    dtype = str(t.dtype).removeprefix("torch.")
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), dtype
    return t.numpy(), dtype


def _torch_restore(host: np.ndarray, meta: dict) -> Any:
    import torch

    dtype = getattr(torch, meta["dtype"])
    if dtype == torch.bfloat16:
        return torch.from_numpy(_c_order(host).view(np.int16).copy()).view(dtype)
    return torch.from_numpy(np.array(host, copy=True))


def _is_torch(value: Any) -> bool:
    import torch

    # exact type: a subclass (nn.Parameter...) would come back as a plain Tensor
    return type(value) is torch.Tensor


# -- jax -----------------------------------------------------------------------------------------


def _jax_host(value: Any) -> tuple[np.ndarray, str]:
    dtype = str(value.dtype)
    host = np.asarray(value)
    if host.dtype.kind == "V" or dtype == "bfloat16":  # ml_dtypes types numpy cannot store
        host = host.view(_UINT_OF_WIDTH[host.dtype.itemsize])
    return host, dtype


def _jax_restore(host: np.ndarray, meta: dict) -> Any:
    import jax.numpy as jnp

    dtype = jnp.dtype(meta["dtype"])
    if host.dtype != dtype:
        host = host.view(dtype)
    return jnp.asarray(host, dtype=dtype)


def _is_jax(value: Any) -> bool:
    import jax

    return isinstance(value, jax.Array)


# -- cupy ----------------------------------------------------------------------------------------


def _cupy_host(value: Any) -> tuple[np.ndarray, str]:
    return value.get(), str(value.dtype)


def _cupy_restore(host: np.ndarray, meta: dict) -> Any:
    import cupy

    return cupy.asarray(host)


def _is_cupy(value: Any) -> bool:
    import cupy

    return isinstance(value, cupy.ndarray)


LIBS = {
    "torch": (_is_torch, _torch_host, _torch_restore, ("torch",)),
    "jax": (_is_jax, _jax_host, _jax_restore, ("jax", "jaxlib")),
    "cupy": (_is_cupy, _cupy_host, _cupy_restore, ("cupy", "cupy_backends")),
}


def host_array(lib: str, value: Any) -> tuple[np.ndarray, str]:
    return LIBS[lib][1](value)


def _digest_rule(lib: str) -> Any:
    def rule(buf: bytearray, value: Any, feeder: Any) -> None:
        host, dtype = host_array(lib, value)
        _str_bytes(buf, b"X", f"{lib}:{dtype}".encode())
        feeder.feed(_c_order(host))

    return rule


def _register_torch_rule() -> None:
    import torch

    register_digest_rule(torch.Tensor)(_digest_rule("torch"))


def _register_jax_rule() -> None:
    import jax

    rule = _digest_rule("jax")
    register_digest_rule(jax.Array)(rule)
    # concrete array classes do not list jax.Array in their MRO on every version
    register_digest_rule(type(jax.numpy.zeros(())))(rule)


def _register_cupy_rule() -> None:
    import cupy

    register_digest_rule(cupy.ndarray)(_digest_rule("cupy"))


#: top-level module of a value's type -> loader of its digest rule (see .digest_rules)
DIGEST_RULE_LOADERS = {
    "torch": _register_torch_rule,
    "jax": _register_jax_rule,
    "jaxlib": _register_jax_rule,
    "cupy": _register_cupy_rule,
}


def register() -> None:
    """Register the tensor codecs (called once by :mod:`.codecs`)."""
    from .codecs import Codec, register_codec

    for lib, (matches, _host, restore, modules) in LIBS.items():

        def encode(store: Any, value: Any, opts: Any, store_leaf: Any, lib: str = lib) -> list:
            array, dtype = host_array(lib, value)
            from .inline import to_tree

            return ["x", lib, {"dtype": dtype}, to_tree(array, store_leaf)]

        def decode(store: Any, ref: list, lazy: bool = False, restore: Any = restore) -> Any:
            return restore(ref[3], ref[2])

        register_codec(Codec(lib, matches, encode, decode), modules)
