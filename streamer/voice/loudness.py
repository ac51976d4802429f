"""Loudness (ITU-R BS.1770-4, in LUFS) and normalisation, so every engine sounds equally loud.

Engines differ by 10 dB and more (espeak-ng is loud, a cloned voice may be quiet); a viewer should not
reach for the volume when the fallback chain switches voices. Each sentence is measured with the
K-weighting filter and the standard's gating (400 ms blocks, 75 % overlap, -70 LUFS absolute and
-10 LU relative gates) and brought to the target. Sentences shorter than one block are measured
ungated. The gain is capped so the sample peak stays under ``peak_dbfs`` (speech peaks are short, a
limiter would colour the voice more than a slightly quieter sentence does).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

DEFAULT_TARGET_LUFS = -18.0
"""Speech for a live stream: louder than broadcast (-23) and under music-platform targets (-14)."""
SILENCE_LUFS = -70.0


def _k_weighting(rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two K-weighting biquads (high shelf + RLB high-pass) for any sample rate (BS.1770 annex 1)."""
    f0, g_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (g_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    b1 = np.array([(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0])
    a1 = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a2 = np.array([1.0, 2.0 * (k * k - 1.0) / (1.0 + k / q + k * k), (1.0 - k / q + k * k) / (1.0 + k / q + k * k)])
    b2 = np.array([1.0, -2.0, 1.0])
    return b1, a1, b2, a2


def integrated_loudness(pcm: np.ndarray, rate: int) -> float:
    """Integrated loudness of mono audio in LUFS (-inf-safe: silence returns ``SILENCE_LUFS``)."""
    x = np.asarray(pcm, dtype=np.float64)
    if x.size == 0:
        return SILENCE_LUFS
    b1, a1, b2, a2 = _k_weighting(rate)
    y = lfilter(b2, a2, lfilter(b1, a1, x))
    block, step = int(0.4 * rate), int(0.1 * rate)
    if y.size < block:
        return _lufs(float(np.mean(y * y)))
    starts = np.arange(0, y.size - block + 1, step)
    sq = np.concatenate([[0.0], np.cumsum(y * y)])
    power = (sq[starts + block] - sq[starts]) / block
    gated = power[power > 10 ** ((SILENCE_LUFS + 0.691) / 10.0)]
    if gated.size == 0:
        return SILENCE_LUFS
    relative = _lufs(float(gated.mean())) - 10.0
    gated = gated[gated > 10 ** ((relative + 0.691) / 10.0)]
    return _lufs(float(gated.mean())) if gated.size else SILENCE_LUFS


def _lufs(mean_square: float) -> float:
    return max(SILENCE_LUFS, -0.691 + 10.0 * math.log10(max(mean_square, 1e-12)))


def gain_to(pcm: np.ndarray, rate: int, target_lufs: float, peak_dbfs: float = -1.0) -> float:
    """The linear gain that brings ``pcm`` to ``target_lufs`` without its peak passing ``peak_dbfs``."""
    loud = integrated_loudness(pcm, rate)
    if loud <= SILENCE_LUFS:
        return 1.0
    gain = 10 ** ((target_lufs - loud) / 20.0)
    peak = float(np.max(np.abs(pcm))) if pcm.size else 0.0
    if peak > 0:
        gain = min(gain, 10 ** (peak_dbfs / 20.0) / peak)
    return gain


def normalize(pcm: np.ndarray, rate: int, target_lufs: float = DEFAULT_TARGET_LUFS,
              peak_dbfs: float = -1.0) -> np.ndarray:
    """``pcm`` brought to ``target_lufs`` (peak-capped); silence is returned unchanged."""
    return (np.asarray(pcm, dtype=np.float32) * np.float32(gain_to(pcm, rate, target_lufs, peak_dbfs)))
