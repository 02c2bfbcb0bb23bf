"""Digest rules of numpy values: arrays by dtype (with byte order) + shape + their raw bytes.

The bytes are hashed on their own (:meth:`Feeder.feed_buffer`) so a writer that streams an
array chunk by chunk can produce the same digest (:func:`array_digest_from_parts`) without ever
holding the whole array. Object arrays have no digest: their bytes are pointers.
"""

from __future__ import annotations

import struct
from typing import Any

import blake3
import numpy as np

from .digest_registry import (
    EXACT_BASES,
    PRIORITY_RULES,
    Feeder,
    UnhashableValueError,
    put_bytes,
    qualified,
    register_digest_rule,
)
from .framing import DIGEST_PREFIX


def c_order(array: Any) -> np.ndarray:
    """C-contiguous without promoting 0-d arrays to 1-d (unlike ``np.ascontiguousarray``)."""
    return np.asarray(array, order="C")


def dtype_token(dtype: np.dtype) -> bytes:
    """dtype with byte order, including structured layouts; object dtype has no digest."""
    if dtype.hasobject:
        raise UnhashableValueError(
            "physflow cannot digest numpy arrays of dtype object: their bytes are pointers. "
            "Use a numeric, bool, string or structured dtype."
        )
    if dtype.fields is None:
        return dtype.str.encode()
    try:
        return str(dtype.descr).encode()
    except ValueError:  # overlapping or out-of-order fields have no descr: spell them out
        fields = [
            (n, dtype_token(dtype.fields[n][0]).decode(), dtype.fields[n][1]) for n in dtype.names
        ]
        return str(("fields", fields, dtype.itemsize)).encode()


def array_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The prefix every array digest starts with (also used by the streaming writer)."""
    token = dtype_token(dtype)
    return (
        b"A"
        + struct.pack("<Q", len(token))
        + token
        + struct.pack("<Q", len(shape))
        + b"".join(struct.pack("<q", n) for n in shape)
    )


def canonical_nan(array: np.ndarray) -> np.ndarray:
    """Scalars with NaNs get one NaN bit pattern, so all NaNs digest alike.

    Arrays are digested by their exact bytes (a different NaN payload is a miss, never a false
    hit); scanning every large array for NaNs would halve hashing speed.
    """
    kind = array.dtype.kind
    if kind in "fc" and array.size and np.isnan(array).any():
        array = array.copy()
        if kind == "c":
            real, imag = array.real, array.imag
            real[np.isnan(real)] = np.nan
            imag[np.isnan(imag)] = np.nan
        else:
            array[np.isnan(array)] = np.nan
    return array


def array_bytes_view(array: np.ndarray) -> memoryview:
    """The C-order bytes of a contiguous array as a flat byte view (no copy)."""
    return memoryview(array.reshape(-1).view(np.uint8))


@register_digest_rule(np.ndarray)
def _ndarray(buf: bytearray, value: np.ndarray, feeder: Feeder) -> None:
    buf += array_header(value.dtype, value.shape)
    if feeder.memo is not None and id(value) in feeder.memo:
        buf += b"H" + feeder.memo[id(value)]
        return
    if not value.flags.c_contiguous:
        value = np.ascontiguousarray(value)
    feeder.feed_buffer(array_bytes_view(value))


def _masked_array(buf: bytearray, value: np.ma.MaskedArray, feeder: Feeder) -> None:
    """Masked arrays: the mask and fill value count (the data alone would be a false hit)."""
    put_bytes(buf, b"M", qualified(type(value)))
    _ndarray(buf, np.ma.getdata(value), feeder)
    _ndarray(buf, np.ma.getmaskarray(value), feeder)
    feeder.feed(np.asarray(value.fill_value)[()])


def _np_scalar(buf: bytearray, value: np.generic, feeder: Feeder) -> None:
    buf += b"a"
    _ndarray(buf, canonical_nan(np.asarray(value)), feeder)


register_digest_rule(np.generic)(_np_scalar)
# np.str_ is a str and np.float64 a float: the dtype must count, so these come before the MRO
PRIORITY_RULES.extend([(np.generic, _np_scalar), (np.ma.MaskedArray, _masked_array)])
EXACT_BASES.add(np.ndarray)


def array_digest_from_parts(dtype: np.dtype, shape: tuple[int, ...], data_hash: bytes) -> str:
    """The digest of an array given the blake3 of its C-order bytes (for streaming writers)."""
    return DIGEST_PREFIX + blake3.blake3(array_header(dtype, shape) + b"H" + data_hash).hexdigest()


def bytes_digest_from_hash(n: int, data_hash: bytes) -> str:
    """``digest(b)`` for a bytes value of length ``n`` whose blake3 is ``data_hash``."""
    return DIGEST_PREFIX + blake3.blake3(b"b" + struct.pack("<Q", n) + b"H" + data_hash).hexdigest()
