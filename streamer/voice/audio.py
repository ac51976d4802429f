"""Small PCM helpers shared by voice, clock and sinks. Audio is mono float32 in [-1, 1]."""

from __future__ import annotations

import io
import wave
from math import gcd

import numpy as np
from scipy.signal import resample_poly


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased), exact length ``round(len * dst / src)``."""
    pcm = np.asarray(pcm, dtype=np.float32)
    if src_rate == dst_rate or pcm.size == 0:
        return pcm
    g = gcd(src_rate, dst_rate)
    out = resample_poly(pcm, dst_rate // g, src_rate // g).astype(np.float32)
    return out


def int16_to_float(data: bytes | np.ndarray) -> np.ndarray:
    arr = np.frombuffer(data, dtype=np.int16) if isinstance(data, (bytes, bytearray)) else data
    return (arr.astype(np.float32) / 32768.0).clip(-1.0, 1.0)


def float_to_int16(pcm: np.ndarray) -> np.ndarray:
    return (np.clip(pcm, -1.0, 1.0) * 32767.0).astype(np.int16)


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Decode a 16-bit PCM WAV (as espeak-ng --stdout writes it) to mono float32."""
    with wave.open(io.BytesIO(data)) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"expected 16-bit WAV, got {8 * width}-bit")
    pcm = int16_to_float(frames)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return pcm, rate


def rms_dbfs(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return -120.0
    r = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))
    return 20.0 * np.log10(max(r, 1e-6))


def trim_silence(pcm: np.ndarray, rate: int, threshold_db: float = -50.0, keep_s: float = 0.05,
                 tail_s: float = 0.2) -> np.ndarray:
    """Cut leading/trailing silence, keeping a short lead and a natural pause after the sentence."""
    if pcm.size == 0:
        return pcm
    thr = 10 ** (threshold_db / 20.0)
    loud = np.flatnonzero(np.abs(pcm) > thr)
    if loud.size == 0:
        return pcm[:0]
    keep = int(keep_s * rate)
    out = pcm[max(0, loud[0] - keep): loud[-1] + 1]
    return np.concatenate([out, np.zeros(int(tail_s * rate), dtype=np.float32)])
