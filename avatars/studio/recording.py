"""The operator's spoken description: read from a file, or recorded from a PulseAudio source.

Any audio file PyAV can decode is accepted (WAV of any sample width, MP3, M4A, OGG ...), mixed to
mono float32. Recording uses PulseAudio's ``parecord`` (raw 16 kHz mono, the rate whisper wants) as a
subprocess, so it works with whatever microphone PulseAudio routes, a virtual one included.

A recording with no speech is refused before speech recognition runs: whisper turns silence into
invented sentences ("Thank you for watching"), which would become a host nobody described.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avatars.studio import StudioError

RATE = 16000
SPEECH_DBFS = -45.0
"""A 30 ms frame louder than this counts as voiced (speech at a normal distance is -30 to -15 dBFS)."""
MIN_SPEECH_S = 0.4


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    p = Path(path)
    if not p.is_file():
        raise StudioError(f"no recording at {p}: pass an existing audio file with --wav, or --record SECONDS")
    import av

    try:
        with av.open(str(p)) as c:
            stream = c.streams.audio[0]
            rate = int(stream.rate)
            chunks = []
            for frame in c.decode(stream):
                arr = frame.to_ndarray()
                if arr.dtype.kind in "iu":
                    arr = arr.astype(np.float32) / float(2 ** (8 * arr.dtype.itemsize - 1))
                chans = len(frame.layout.channels)
                arr = arr.reshape(chans, -1) if frame.format.is_planar else arr.reshape(-1, chans).T
                chunks.append(arr.mean(axis=0).astype(np.float32))
    except (av.error.FFmpegError, IndexError) as e:
        raise StudioError(f"cannot read {p} as audio ({e}): use a WAV, MP3 or M4A recording") from None
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return pcm, rate


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    data = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)


def voiced_seconds(pcm: np.ndarray, rate: int) -> tuple[float, float]:
    """(seconds of 30 ms frames above SPEECH_DBFS, peak level in dBFS)."""
    n = int(rate * 0.03)
    frames = len(pcm) // n
    peak = float(np.abs(pcm).max(initial=0.0))
    peak_db = 20 * np.log10(peak) if peak > 0 else -120.0
    if frames == 0:
        return 0.0, peak_db
    rms = np.sqrt(np.mean(np.square(pcm[:frames * n].reshape(frames, n), dtype=np.float64), axis=1))
    voiced = int(np.sum(rms > 10 ** (SPEECH_DBFS / 20)))
    return voiced * 0.03, peak_db


def check_speech(pcm: np.ndarray, rate: int, what: str) -> None:
    voiced, peak_db = voiced_seconds(pcm, rate)
    if voiced < MIN_SPEECH_S:
        raise StudioError(
            f"{what} is silent ({len(pcm) / max(rate, 1):.1f} s long, loudest {peak_db:.0f} dBFS, {voiced:.1f} s above "
            f"{SPEECH_DBFS:.0f} dBFS): check that the microphone is not muted and is the one recorded "
            "(pactl list sources short; choose with --source), speak closer, or pass a recording with --wav FILE")


def record(seconds: float, source: str | None = None, on_tick: Callable[[float], None] | None = None) -> np.ndarray:
    """Record ``seconds`` of 16 kHz mono from PulseAudio (Ctrl-C stops early and keeps what was said)."""
    exe = shutil.which("parecord")
    if exe is None:
        raise StudioError("recording needs PulseAudio's parecord (sudo apt-get install pulseaudio-utils), or pass a "
                          "recording with --wav FILE")
    cmd = [exe, "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=50"]
    if source:
        cmd.append(f"--device={source}")
    want = int(seconds * RATE) * 2
    buf = bytearray()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    started = time.monotonic()
    try:
        while len(buf) < want:
            chunk = proc.stdout.read1(min(6400, want - len(buf)))  # type: ignore[attr-defined]
            if not chunk:
                break
            buf += chunk
            if on_tick:
                on_tick(time.monotonic() - started)
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if not buf:
        raise StudioError(f"parecord recorded nothing ({err.decode(errors='replace').strip()[:200] or 'no data'}): "
                          "is PulseAudio running (pactl info) and does the source exist (pactl list sources short)?")
    return np.frombuffer(bytes(buf[:len(buf) // 2 * 2]), "<i2").astype(np.float32) / 32768.0
