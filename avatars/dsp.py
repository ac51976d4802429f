"""The signal processing avatars need, with no dependency on the runtime.

``avatars`` must not import ``streamer`` (the runtime imports avatars, never the other way round), yet
renderers and action clips resample audio exactly like the voice does. The one implementation lives
here; ``streamer.voice.audio`` re-exports it, so both sides share it and the arrow points one way.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import resample_poly


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased), exact length ``round(len * dst / src)``."""
    pcm = np.asarray(pcm, dtype=np.float32)
    if src_rate == dst_rate or pcm.size == 0:
        return pcm
    g = gcd(src_rate, dst_rate)
    return resample_poly(pcm, dst_rate // g, src_rate // g).astype(np.float32)
