"""The array-module switch: the STFT and CFAR kernels are written once against this small
interface, and run on numpy (default), cupy (CUDA) or torch (CPU or GPU).

Only the operations the kernels need are wrapped; each backend maps them to its own calls
(``axis`` vs ``dim``, ``torch.fft`` vs ``numpy.fft``). Arrays enter with :meth:`asarray` and
leave with :meth:`to_numpy`, so stages always store numpy arrays and results do not depend on
which library computed them beyond floating-point rounding.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import numpy as np

BackendName = Literal["numpy", "cupy", "torch"]


class NumpyBackend:
    """numpy itself (the reference every other backend is tested against)."""

    name = "numpy"

    def __init__(self) -> None:
        self.xp = np

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def fft(self, a: Any, axis: int = -1) -> Any:
        return np.fft.fft(a, axis=axis)

    def windows(self, a: Any, n: int, hop: int) -> Any:
        """Overlapping length-``n`` windows every ``hop`` samples along the last axis, as a
        view (no copy): (..., L) -> (..., cols, n)."""
        view = self.xp.lib.stride_tricks.sliding_window_view(a, n, axis=-1)
        return view[..., ::hop, :]

    def fftshift(self, a: Any, axis: int = -1) -> Any:
        return np.fft.fftshift(a, axes=axis)

    def cumsum(self, a: Any, axis: int) -> Any:
        return np.cumsum(a, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return np.zeros(shape, dtype=dtype)

    def arange(self, n: int) -> Any:
        return np.arange(n)

    def abs2(self, a: Any) -> Any:
        return a.real * a.real + a.imag * a.imag

    def log10(self, a: Any) -> Any:
        return np.log10(a)

    def power10(self, a: Any) -> Any:
        return np.power(np.asarray(10.0, dtype=a.dtype), a)

    def clip(self, a: Any, lo: float, hi: float) -> Any:
        return np.clip(a, lo, hi)

    def maximum(self, a: Any, b: Any) -> Any:
        return np.maximum(a, b)

    def amax(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return np.max(a, axis=axis, keepdims=keepdims)

    def concat(self, arrays: list[Any], axis: int) -> Any:
        return np.concatenate(arrays, axis=axis)


class CupyBackend(NumpyBackend):
    """cupy mirrors numpy's API, so every method only swaps the module."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy

        self.xp = cupy

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        return self.xp.asnumpy(a)

    def fft(self, a: Any, axis: int = -1) -> Any:
        return self.xp.fft.fft(a, axis=axis)

    def fftshift(self, a: Any, axis: int = -1) -> Any:
        return self.xp.fft.fftshift(a, axes=axis)

    def cumsum(self, a: Any, axis: int) -> Any:
        return self.xp.cumsum(a, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.xp.zeros(shape, dtype=dtype)

    def arange(self, n: int) -> Any:
        return self.xp.arange(n)

    def log10(self, a: Any) -> Any:
        return self.xp.log10(a)

    def power10(self, a: Any) -> Any:
        return self.xp.power(self.xp.asarray(10.0, dtype=a.dtype), a)

    def clip(self, a: Any, lo: float, hi: float) -> Any:
        return self.xp.clip(a, lo, hi)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.xp.maximum(a, b)

    def amax(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return self.xp.max(a, axis=axis, keepdims=keepdims)

    def concat(self, arrays: list[Any], axis: int) -> Any:
        return self.xp.concatenate(arrays, axis=axis)


class TorchBackend(NumpyBackend):
    """torch on its best device (CUDA when available, else CPU)."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.xp = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def _dtype(self, dtype: Any) -> Any:
        if dtype is None or isinstance(dtype, self.xp.dtype):
            return dtype
        return getattr(self.xp, np.dtype(dtype).name)

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            a = a.copy()  # torch refuses read-only buffers (stage inputs are read-only)
        return self.xp.as_tensor(a, dtype=self._dtype(dtype), device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy()

    def fft(self, a: Any, axis: int = -1) -> Any:
        return self.xp.fft.fft(a, dim=axis)

    def windows(self, a: Any, n: int, hop: int) -> Any:
        return a.unfold(-1, n, hop)

    def fftshift(self, a: Any, axis: int = -1) -> Any:
        return self.xp.fft.fftshift(a, dim=axis)

    def cumsum(self, a: Any, axis: int) -> Any:
        return self.xp.cumsum(a, dim=axis)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.xp.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def arange(self, n: int) -> Any:
        return self.xp.arange(n, device=self.device)

    def log10(self, a: Any) -> Any:
        return self.xp.log10(a)

    def power10(self, a: Any) -> Any:
        return self.xp.pow(10.0, a)

    def clip(self, a: Any, lo: float, hi: float) -> Any:
        return self.xp.clamp(a, lo, hi)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.xp.maximum(a, b)

    def amax(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if axis is None:
            return self.xp.amax(a)
        return self.xp.amax(a, dim=axis, keepdim=keepdims)

    def concat(self, arrays: list[Any], axis: int) -> Any:
        return self.xp.cat(arrays, dim=axis)


_BACKENDS = {"numpy": NumpyBackend, "cupy": CupyBackend, "torch": TorchBackend}


@cache
def get_backend(name: str) -> NumpyBackend:
    """The backend called ``name``; a clear error when its library is not installed."""
    try:
        cls = _BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"array backend {name!r} is not known; use one of {', '.join(map(repr, _BACKENDS))}"
        ) from None
    try:
        return cls()
    except ImportError as exc:
        raise ImportError(
            f"array backend {name!r} needs the {name} package ({exc}); install it or set "
            "backend: numpy"
        ) from None
