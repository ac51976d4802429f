"""Action clips: short videos (a wave, a nod, pointing at the product) played instead of the avatar on
a command or when an event arrives (a gift), with their own audio when they have one.

A clip is fitted to the output frame and kept JPEG-encoded; its audio is resampled to the output
rate. The clock plays it like speech: one frame and one frame of audio per tick, interruptible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avatars.dsp import resample
from avatars.portrait import AvatarError, _fit


@dataclass
class ActionClip:
    name: str
    encoded: list[bytes]
    audio: np.ndarray
    """Mono float32 at the output rate, exactly as long as the frames (padded or cut)."""
    on: str = ""
    """An event kind (gift, follow, super_chat...) that triggers the clip, or empty."""

    @property
    def frames(self) -> int:
        return len(self.encoded)

    def picture(self, position: int) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(self.encoded[min(position, len(self.encoded) - 1)], np.uint8),
                           cv2.IMREAD_COLOR)
        if img is None:
            raise AvatarError(f"action clip {self.name!r}: frame {position} does not decode")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_clip(name: str, path: str | Path, width: int, height: int, fps: int, sample_rate: int,
              on: str = "", volume: float = 1.0) -> ActionClip:
    import av

    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"action clip {name!r}: {path} not found")
    try:
        with av.open(str(path)) as c:
            src_fps = float(c.streams.video[0].average_rate or fps)
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        audio = np.zeros(0, np.float32)
        with av.open(str(path)) as c:
            if c.streams.audio:
                rate = c.streams.audio[0].rate
                chunks = [f.to_ndarray().astype(np.float32).reshape(len(f.layout.channels), -1).mean(axis=0)
                          for f in c.decode(audio=0)]
                if chunks:
                    pcm = np.concatenate(chunks)
                    if np.abs(pcm).max(initial=0) > 1.5:  # integer samples
                        pcm = pcm / 32768.0
                    audio = resample(pcm, rate, sample_rate) * np.float32(volume)
    except (av.error.FFmpegError, IndexError) as e:
        raise AvatarError(f"action clip {name!r}: cannot read {path}: {e}") from None
    if not frames:
        raise AvatarError(f"action clip {name!r}: {path} has no frames")
    # resample the frame sequence to the output rate by nearest frame
    n_out = max(1, round(len(frames) * fps / src_fps))
    picks = [frames[min(len(frames) - 1, int(i * src_fps / fps))] for i in range(n_out)]
    encoded = []
    for f in picks:
        fitted = _fit(f, width, height)[0]
        encoded.append(cv2.imencode(".jpg", cv2.cvtColor(fitted, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    spf = sample_rate // fps
    track = np.zeros(n_out * spf, np.float32)
    track[: min(len(audio), len(track))] = audio[: len(track)]
    return ActionClip(name, encoded, np.clip(track, -1, 1), on)
