"""``Waveform``: a compiled program as the card sees it -- per-segment sample memory plus the
step table -- without concatenating anything until asked (uploads go segment by segment)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .model import SegmentWave, StepTable


class Waveform:
    """Segments (int16, channels x n each, on numpy or cupy) and the step table."""

    def __init__(
        self, steps: StepTable, waves: tuple[SegmentWave, ...], arrays: tuple[Any, ...]
    ) -> None:
        self.steps = steps
        self.waves = waves
        self._arrays = arrays

    @property
    def names(self) -> tuple[str, ...]:
        return self.steps.names

    @property
    def segments(self) -> dict[str, Any]:
        """Segment name -> its samples (int16, channels x n)."""
        return dict(zip(self.steps.names, self._arrays))

    def segment(self, name: str) -> Any:
        try:
            return self._arrays[self.steps.names.index(name)]
        except ValueError:
            raise KeyError(f"no segment '{name}'; segments: {', '.join(self.names)}") from None

    def samples(self) -> Any:
        """The whole sample memory (channels x total samples): the bytes ``awg.assemble``
        stores."""
        if not self._arrays:
            return np.zeros((self.steps.channels, 0), dtype=np.int16)
        first = self._arrays[0]
        xp = np if isinstance(first, np.ndarray) else __import__("cupy")
        return xp.concatenate(self._arrays, axis=1)

    def clipped(self) -> dict[str, int]:
        """Clipped samples per segment, for the segments that clip."""
        return {n: sum(w.clipped) for n, w in zip(self.steps.names, self.waves) if sum(w.clipped)}

    def __repr__(self) -> str:
        return (
            f"<awg.Waveform {len(self.names)} segments, {self.steps.channels} channels, "
            f"{self.steps.total_samples} samples>"
        )
