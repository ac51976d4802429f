"""Small PCM helpers shared by voice, clock and sinks. Audio is mono float32 in [-1, 1]."""

from __future__ import annotations

import io
import wave
from math import gcd
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from avatars.dsp import resample  # noqa: F401  (one implementation, shared with avatars)


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


class StreamResampler:
    """Polyphase resampling of a stream that arrives in chunks, sample-identical to :func:`resample`
    on the whole signal (up to float rounding).

    Each block is resampled with ``pad`` input samples of context on both sides, so the filter never
    sees a chunk edge; output is held back by ``pad`` input samples until the right context arrived.
    Block edges and ``pad`` are multiples of ``down``, where input positions map to whole output samples.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        g = gcd(src_rate, dst_rate)
        self.up, self.down = dst_rate // g, src_rate // g
        self.identity = src_rate == dst_rate
        self.pad = self.down * -(-max(64, 12 * max(self.up, self.down) // self.up) // self.down)
        self._buf = np.zeros(self.pad, dtype=np.float32)  # leading zeros: what resample_poly assumes
        self._base = -self.pad  # absolute input index of _buf[0]
        self._done = 0  # next input index whose output is still owed
        self._total = 0

    def push(self, pcm: np.ndarray) -> np.ndarray:
        pcm = np.asarray(pcm, dtype=np.float32)
        if self.identity:
            return pcm
        self._buf = np.concatenate([self._buf, pcm])
        self._total += pcm.size
        end = (self._total - self.pad) // self.down * self.down
        return self._emit(end) if end > self._done else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """The rest of the stream (the input ends with zeros, as for a whole-signal resample)."""
        if self.identity:
            return np.zeros(0, dtype=np.float32)
        owed = -(-self._total * self.up // self.down) - self._done * self.up // self.down
        end = -(-self._total // self.down) * self.down
        self._buf = np.concatenate([self._buf, np.zeros(end - self._total + self.pad, dtype=np.float32)])
        out = self._emit(end) if end > self._done else np.zeros(0, dtype=np.float32)
        return out[:max(0, owed)]

    def _emit(self, end: int) -> np.ndarray:
        s = self._done
        seg = self._buf[s - self.pad - self._base: end + self.pad - self._base]
        y = resample_poly(seg, self.up, self.down).astype(np.float32)
        lead = self.pad * self.up // self.down
        out = y[lead: lead + (end - s) * self.up // self.down]
        self._done = end
        drop = self._done - self.pad - self._base  # keep only the left context the next block needs
        if drop > 0:
            self._buf = self._buf[drop:]
            self._base += drop
        return out


class Mp3Decoder:
    """Incremental MP3 decoding (PyAV): bytes in as they arrive, mono float32 out."""

    def __init__(self) -> None:
        import av

        self._ctx: Any = av.CodecContext.create("mp3", "r")
        self.rate = 0

    def decode(self, data: bytes) -> np.ndarray:
        out = []
        for packet in self._ctx.parse(data):
            out.extend(self._frames(packet))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        out = []
        for packet in self._ctx.parse(b""):
            out.extend(self._frames(packet))
        out.extend(self._frames(None))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _frames(self, packet: Any) -> list[np.ndarray]:
        import av

        try:
            frames = self._ctx.decode(packet)
        except av.error.EOFError:
            return []
        except av.error.InvalidDataError as e:
            raise ValueError(f"not MP3 audio: {e}") from None
        out = []
        for f in frames:
            self.rate = f.sample_rate
            arr = f.to_ndarray().astype(np.float32)
            if f.format.name.startswith("s16"):
                arr /= 32768.0
            elif f.format.name.startswith("s32"):
                arr /= 2147483648.0
            arr = arr.reshape(len(f.layout.channels), -1).mean(axis=0) if arr.ndim > 1 or f.format.is_planar \
                else arr.reshape(-1, len(f.layout.channels)).mean(axis=1)
            out.append(arr)
        return out


def encode_mp3(pcm: np.ndarray, rate: int, bitrate: int = 48000) -> bytes:
    """Mono float32 to a constant-bitrate MP3 stream (what edge-tts sends), for tests and tools."""
    import av

    ctx: Any = av.CodecContext.create("libmp3lame", "w")
    ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = rate, "mono", "s16p", bitrate
    ctx.open()
    data = float_to_int16(pcm)
    out = bytearray()
    step = ctx.frame_size or 1152
    for i in range(0, data.size, step):
        frame = av.AudioFrame.from_ndarray(data[None, i:i + step], format="s16p", layout="mono")
        frame.sample_rate = rate
        for p in ctx.encode(frame):
            out += bytes(p)
    for p in ctx.encode(None):
        out += bytes(p)
    return bytes(out)
