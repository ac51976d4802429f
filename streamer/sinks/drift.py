"""Audio drift correction against a sound device's own clock.

The clock produces samples by the machine's monotonic clock; a sound card consumes them by its own
crystal, typically off by tens to hundreds of ppm. Uncorrected, a 24-hour stream builds up seconds
of latency (or underruns). We measure the device's buffer level after each write and, only while
idle (the chunk is silence), drop or insert a few samples to steer it back to the target. Speech is
never stretched, so its pitch and timing are untouched.
"""

from __future__ import annotations

import numpy as np


class DriftCorrector:
    def __init__(self, rate: int, target_latency_s: float, tolerance_s: float = 0.015,
                 max_step_fraction: float = 0.1) -> None:
        self.rate = rate
        self.target = target_latency_s
        self.tolerance = tolerance_s
        self.max_step_fraction = max_step_fraction
        self.dropped = 0
        self.inserted = 0

    def adjust(self, chunk: np.ndarray, latency_s: float, speaking: bool) -> np.ndarray:
        """The chunk to write, trimmed or padded when idle and the buffer is off target."""
        if speaking or chunk.size == 0:
            return chunk
        err = latency_s - self.target
        limit = int(chunk.size * self.max_step_fraction)
        if err > self.tolerance:
            n = min(int((err - self.tolerance / 2) * self.rate), limit)
            if n > 0:
                self.dropped += n
                return chunk[: chunk.size - n]
        elif err < -self.tolerance:
            n = min(int((-err - self.tolerance / 2) * self.rate), limit)
            if n > 0:
                self.inserted += n
                return np.concatenate([chunk, np.zeros(n, dtype=chunk.dtype)])
        return chunk
