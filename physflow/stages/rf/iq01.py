"""IQ01 frames: a 24-byte header ``struct '=4sQIIf'`` (magic b"IQ01", timestamp_us, frame_idx,
num_samples, reserved) followed by num_samples complex64 samples, repeated to the end of the
file. Native byte order, as the struct format says (little-endian on x86 and ARM).

Readers check every frame and raise :class:`RecordingFormatError` naming the file, the frame
and its byte offset: bad magic, a truncated header or payload, a frame of the wrong size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np

from .iq import IQ, RecordingFormatError, check_samples

HEADER = struct.Struct("=4sQIIf")
MAGIC = b"IQ01"
SAMPLE = np.dtype(np.complex64)


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    timestamp_us: int
    frame_idx: int
    samples: Any
    reserved: float = 0.0


class FrameHeader(msgspec.Struct, frozen=True):
    offset: int  # byte offset of the payload
    timestamp_us: int
    frame_idx: int
    num_samples: int


def write_frames(path: str | Path, frames: Iterable[Frame]) -> int:
    """Write ``frames`` to ``path``; returns the number of frames."""
    count = 0
    with open(path, "wb") as fh:
        for frame in frames:
            check_samples(frame.samples, f"{path}: frame {count} samples")
            n = frame.samples.shape[0]
            if not (
                0 < n < 2**32 and 0 <= frame.frame_idx < 2**32 and 0 <= frame.timestamp_us < 2**64
            ):
                raise RecordingFormatError(
                    f"{path}: frame {count}: num_samples {n}, frame_idx {frame.frame_idx} or "
                    f"timestamp_us {frame.timestamp_us} does not fit the IQ01 header "
                    "(1 <= num_samples < 2**32, frame_idx < 2**32, timestamp_us < 2**64)"
                )
            fh.write(HEADER.pack(MAGIC, frame.timestamp_us, frame.frame_idx, n, frame.reserved))
            fh.write(np.ascontiguousarray(frame.samples, dtype=SAMPLE).tobytes())
            count += 1
    return count


def _header_at(fh: BinaryIO, path: Any, index: int, offset: int, size: int) -> FrameHeader:
    raw = fh.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise RecordingFormatError(
            f"{path}: truncated IQ01 header of frame {index} at byte {offset}: {len(raw)} of "
            f"{HEADER.size} bytes (file cut short?)"
        )
    magic, ts, idx, n, _ = HEADER.unpack(raw)
    if magic != MAGIC:
        hint = "not an IQ01 file" if index == 0 else "the previous frame's num_samples is wrong"
        raise RecordingFormatError(
            f"{path}: frame {index} at byte {offset}: bad magic {magic!r}, expected {MAGIC!r} "
            f"({hint})"
        )
    payload = offset + HEADER.size
    if n == 0:
        raise RecordingFormatError(
            f"{path}: frame {index} at byte {offset}: num_samples is 0 (wrong frame size)"
        )
    if payload + n * SAMPLE.itemsize > size:
        raise RecordingFormatError(
            f"{path}: truncated frame {index} at byte {offset}: header says {n} samples "
            f"({n * SAMPLE.itemsize} bytes) but only {size - payload} bytes remain"
        )
    return FrameHeader(payload, ts, idx, n)


def scan(path: str | Path, expected_samples: int | None = None) -> list[FrameHeader]:
    """Every frame's header, checked, without reading the samples (seeks past them).
    ``expected_samples``: every frame must have that many samples."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise RecordingFormatError(f"{path}: empty file, no IQ01 frames")
    headers: list[FrameHeader] = []
    with open(path, "rb") as fh:
        offset = 0
        while offset < size:
            h = _header_at(fh, path, len(headers), offset, size)
            if expected_samples is not None and h.num_samples != expected_samples:
                raise RecordingFormatError(
                    f"{path}: frame {len(headers)} at byte {offset} has {h.num_samples} "
                    f"samples, expected {expected_samples} (wrong frame size)"
                )
            headers.append(h)
            offset = h.offset + h.num_samples * SAMPLE.itemsize
            fh.seek(offset)
    return headers


def read_frames(path: str | Path, expected_samples: int | None = None) -> Iterator[Frame]:
    """The frames of ``path`` in order (each frame's samples are read when it is reached)."""
    headers = scan(path, expected_samples)
    with open(path, "rb") as fh:
        for h in headers:
            fh.seek(h.offset - HEADER.size + 20)
            (reserved,) = struct.unpack("=f", fh.read(4))
            samples = np.fromfile(fh, dtype=SAMPLE, count=h.num_samples)
            yield Frame(
                timestamp_us=h.timestamp_us,
                frame_idx=h.frame_idx,
                samples=samples,
                reserved=reserved,
            )


def write_iq(path: str | Path, iq: IQ, frame_samples: int, first_frame_idx: int = 0) -> int:
    """An ``IQ`` as IQ01 frames of ``frame_samples`` (the last may be shorter); frame i is
    stamped start_time_us + round(i * frame_samples / fs * 1e6)."""
    if frame_samples < 1:
        raise RecordingFormatError(f"{path}: frame_samples must be >= 1, got {frame_samples}")
    n = iq.samples.shape[0]

    def frames() -> Iterator[Frame]:
        for i, lo in enumerate(range(0, n, frame_samples)):
            ts = iq.start_time_us + round(i * frame_samples / iq.sample_rate_hz * 1e6)
            yield Frame(
                timestamp_us=ts,
                frame_idx=first_frame_idx + i,
                samples=iq.samples[lo : lo + frame_samples],
            )

    return write_frames(path, frames())


def read_iq(path: str | Path, sample_rate_hz: float, center_freq_hz: float = 0.0) -> IQ:
    """All frames of ``path`` joined into one ``IQ`` (start time: the first frame's stamp).
    IQ01 headers carry no rates: give the sample rate and centre frequency."""
    headers = scan(path)
    samples = np.empty(sum(h.num_samples for h in headers), dtype=SAMPLE)
    with open(path, "rb") as fh:
        pos = 0
        for h in headers:
            fh.seek(h.offset)
            fh.readinto(memoryview(samples[pos : pos + h.num_samples]).cast("B"))
            pos += h.num_samples
    return IQ(
        samples=samples,
        sample_rate_hz=sample_rate_hz,
        center_freq_hz=center_freq_hz,
        start_time_us=headers[0].timestamp_us,
    )
