"""The mel spectrogram exactly as Wav2Lip's audio settings define it, vectorised with NumPy.

16 kHz audio, pre-emphasis 0.97, STFT with n_fft 800, hop 200, a periodic Hann window of 800,
centred with reflect padding; an 80-band Slaney mel filterbank from 55 to 7600 Hz; amplitude to dB
with a floor of -100 dB, minus the 20 dB reference level; then normalised symmetrically to
[-4, 4] (min level -100 dB) with clipping. 80 mel frames per second of audio.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS = 4.0
MEL_STEP = 16
"""Mel frames per video-frame window (0.2 s)."""
MEL_FPS = SAMPLE_RATE / HOP


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """(80, 401) Slaney-normalised triangular filters, as librosa.filters.mel builds them."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(FMIN)), _hz_to_mel(np.array(FMAX)), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS])
    return (weights * enorm[:, None]).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(WIN)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)).astype(np.float64)  # periodic Hann


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """(80, frames) normalised mel spectrogram of 16 kHz mono audio."""
    x = np.asarray(wav, dtype=np.float64)
    emphasised = np.empty_like(x)
    if x.size:
        emphasised[0] = x[0]
        emphasised[1:] = x[1:] - PREEMPHASIS * x[:-1]
    pad = N_FFT // 2
    padded = np.pad(emphasised, pad, mode="reflect") if emphasised.size > pad else np.pad(emphasised, pad)
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    spectrum = np.abs(np.fft.rfft(frames * _window(), axis=1)).T  # (401, frames)
    mel = mel_basis().astype(np.float64) @ spectrum
    min_level = np.exp(MIN_LEVEL_DB / 20 * np.log(10))
    s = 20 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    return np.clip((2 * MAX_ABS) * ((s - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS, -MAX_ABS, MAX_ABS).astype(np.float32)


def mel_windows(mel: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """(n_frames, 80, 16): the mel window for each video frame (frame i starts at 80 * i / fps)."""
    out = np.empty((n_frames, N_MELS, MEL_STEP), dtype=np.float32)
    total = mel.shape[1]
    for i in range(n_frames):
        start = int(MEL_FPS * (i / fps))
        if start + MEL_STEP > total:
            start = max(0, total - MEL_STEP)
        chunk = mel[:, start:start + MEL_STEP]
        if chunk.shape[1] < MEL_STEP:
            chunk = np.pad(chunk, ((0, 0), (0, MEL_STEP - chunk.shape[1])), constant_values=-MAX_ABS)
        out[i] = chunk
    return out
