"""Digest rules of optional libraries' types (torch, jax, cupy, xarray), registered lazily.

:mod:`.hashing` registers these loaders by top-level module name, so ``import physflow`` never
imports torch or xarray: a rule is loaded the first time a value of such a type is digested.
Tensors digest as their library, dtype and host array (a tensor and the equal numpy array never
share a digest; the device does not count). xarray values digest their name, attrs and every
variable (sorted by name, coordinates apart from data variables) with dims, attrs and data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .array_rules import c_order
from .digest_registry import Feeder, put_bytes, register_digest_rule, register_lazy_rules

_UINT_OF_WIDTH = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def torch_host(value: Any) -> tuple[np.ndarray, str]:
    """A torch tensor as (host numpy array, dtype name); bfloat16 travels as uint16."""
    import torch

    t = value.detach().resolve_conj().resolve_neg()  # lazy conj/neg bits: numpy() refuses
    if t.device.type != "cpu":
        t = t.cpu()
    dtype = str(t.dtype).removeprefix("torch.")
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), dtype
    return t.numpy(), dtype


def jax_host(value: Any) -> tuple[np.ndarray, str]:
    """A jax array as (host numpy array, dtype name); ml_dtypes travel as same-width uints."""
    dtype = str(value.dtype)
    host = np.asarray(value)
    if host.dtype.kind == "V" or dtype == "bfloat16":
        host = host.view(_UINT_OF_WIDTH[host.dtype.itemsize])
    return host, dtype


def cupy_host(value: Any) -> tuple[np.ndarray, str]:
    return value.get(), str(value.dtype)


HOSTS = {"torch": torch_host, "jax": jax_host, "cupy": cupy_host}


def _tensor_rule(lib: str) -> Any:
    def rule(buf: bytearray, value: Any, feeder: Feeder) -> None:
        host, dtype = HOSTS[lib](value)
        put_bytes(buf, b"X", f"{lib}:{dtype}".encode())
        feeder.feed(c_order(host))

    return rule


def _torch() -> None:
    import torch

    register_digest_rule(torch.Tensor)(_tensor_rule("torch"))


def _jax() -> None:
    import jax

    rule = _tensor_rule("jax")
    register_digest_rule(jax.Array)(rule)
    # concrete array classes do not list jax.Array in their MRO on every version
    register_digest_rule(type(jax.numpy.zeros(())))(rule)


def _cupy() -> None:
    import cupy

    register_digest_rule(cupy.ndarray)(_tensor_rule("cupy"))


def _feed_variable(buf: bytearray, var: Any, feeder: Feeder) -> None:
    feeder.feed(tuple(var.dims))
    feeder.feed(dict(var.attrs))
    feeder.feed(c_order(np.asarray(var.values)))


def _name_digest(name: Any) -> str:
    feeder = Feeder()
    feeder.feed(name)
    return feeder.hexdigest()


def _feed_named(buf: bytearray, items: list[tuple[Any, Any]], feeder: Feeder) -> None:
    buf += len(items).to_bytes(8, "little")
    for _key, name, var in sorted(((_name_digest(n), n, v) for n, v in items), key=lambda e: e[0]):
        feeder.feed(name)
        _feed_variable(buf, var, feeder)


def _dataarray_rule(buf: bytearray, value: Any, feeder: Feeder) -> None:
    put_bytes(buf, b"X", b"xarray.DataArray")
    feeder.feed(value.name)
    _feed_variable(buf, value.variable, feeder)
    _feed_named(buf, [(n, c.variable) for n, c in value.coords.items()], feeder)


def _dataset_rule(buf: bytearray, value: Any, feeder: Feeder) -> None:
    put_bytes(buf, b"X", b"xarray.Dataset")
    feeder.feed(dict(value.attrs))
    _feed_named(buf, [(n, v.variable) for n, v in value.data_vars.items()], feeder)
    _feed_named(buf, [(n, c.variable) for n, c in value.coords.items()], feeder)


def _xarray() -> None:
    import xarray as xr

    register_digest_rule(xr.DataArray)(_dataarray_rule)
    register_digest_rule(xr.Dataset)(_dataset_rule)


for _module, _loader in (
    ("torch", _torch),
    ("jax", _jax),
    ("jaxlib", _jax),
    ("cupy", _cupy),
    ("cupy_backends", _cupy),
    ("xarray", _xarray),
):
    register_lazy_rules(_module, _loader)
