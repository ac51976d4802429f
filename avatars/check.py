"""Does a lip-sync checkpoint work? Render a clip and measure what a viewer would see.

- **sync**: the generated mouth's opening, frame by frame (how dark the mouth interior of the 96x96
  face is against the closed-mouth input), correlated with the loudness of the audio under each frame,
  at offsets of up to five frames either way. A working checkpoint opens the mouth with the voice:
  a clear correlation at an offset of zero or one frame. Random or wrong weights (a discriminator, a
  fork trained on other inputs, BGR fed as RGB) give a weak or shifted one.
- **sharpness**: detail in the mouth region of the composed frames (variance of the Laplacian)
  against the same region of the untouched portrait. Wav2Lip's faces are 96x96, so some softness is
  expected; a very low ratio means a face box far larger than the network's resolution, or a
  washed-out output.
- **speed**: frames rendered per second of wall time, and the time to the first frame.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from avatars.base import MouthPose
from avatars.paste import wav2lip_box

if TYPE_CHECKING:
    from avatars.wav2lip.renderer import Wav2LipRenderer

SYNC_MIN_R = 0.3
SYNC_MAX_OFFSET = 2
SHARPNESS_MIN = 0.15


@dataclass(frozen=True)
class CheckReport:
    frames: int
    speech_frames: int
    render_s: float
    first_frame_s: float
    sync_r: float
    sync_offset: int
    """Frames the mouth lags the voice (negative: it leads)."""
    sharpness: float
    """Mouth-region detail of the composed frames as a fraction of the portrait's own."""

    @property
    def in_sync(self) -> bool:
        return self.sync_r >= SYNC_MIN_R and abs(self.sync_offset) <= SYNC_MAX_OFFSET

    @property
    def sharp(self) -> bool:
        return self.sharpness >= SHARPNESS_MIN

    @property
    def times_realtime(self) -> float:
        return self.frames / max(1e-9, self.render_s) / 25.0


def loudness_per_frame(pcm: np.ndarray, rate: int, fps: int, frames: int) -> np.ndarray:
    spf = rate / fps
    out = np.zeros(frames, np.float64)
    for i in range(frames):
        chunk = pcm[int(i * spf):int((i + 1) * spf)]
        out[i] = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if chunk.size else 0.0
    return out


def mouth_opening(face: np.ndarray, closed: np.ndarray) -> float:
    """How much darker the mouth interior of a 96x96 face is than the closed-mouth input's."""
    def dark(img: np.ndarray) -> float:
        luma = cv2.cvtColor(np.ascontiguousarray(img[62:86, 30:66]), cv2.COLOR_RGB2GRAY).astype(np.float64)
        return float(np.mean(255.0 - luma))

    return dark(face) - dark(closed)


def sync_score(opening: np.ndarray, loudness: np.ndarray, max_offset: int = 5) -> tuple[float, int]:
    """(best correlation, offset in frames the mouth lags the voice) over offsets -max..max."""
    best = (-1.0, 0)
    for k in range(-max_offset, max_offset + 1):
        a = opening[max(0, k):len(opening) + min(0, k)]
        b = loudness[max(0, -k):len(loudness) - max(0, k)]
        if len(a) < 8 or a.std() < 1e-9 or b.std() < 1e-9:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if r > best[0]:
            best = (r, k)
    return best


def laplacian_detail(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def check_poses(renderer: Wav2LipRenderer, poses: list[MouthPose], pcm: np.ndarray, rate: int, fps: int,
                closed_face: np.ndarray) -> tuple[float, int, float]:
    """(sync r, sync offset, sharpness) of rendered poses; ``closed_face``: the 96x96 input face, RGB."""
    opening = np.array([mouth_opening(p.patch, closed_face) if p.patch is not None else 0.0 for p in poses])
    r, offset = sync_score(opening, loudness_per_frame(pcm, rate, fps, len(poses)))
    frame = renderer.frame
    x1, y1, x2, y2 = wav2lip_box(renderer.avatar.hints.face_box, renderer.avatar.image.shape, renderer.pads)
    mouth = (slice(y1 + (y2 - y1) // 2, y2), slice(x1 + (x2 - x1) // 5, x2 - (x2 - x1) // 5))
    reference = laplacian_detail(frame(0, None)[mouth])
    talking = [p for p in poses if p.patch is not None]
    ratios = [laplacian_detail(frame(0, MouthPose(p.open, p.wide, 0.0, patch=p.patch))[mouth]) / max(1e-9, reference)
              for p in talking[:: max(1, len(talking) // 12)]]
    return r, offset, float(np.median(ratios)) if ratios else 0.0


def check_renderer(renderer: Wav2LipRenderer, pcm: np.ndarray, rate: int,
                   first_batch: int = 4) -> tuple[CheckReport, list[MouthPose]]:
    """Render ``pcm`` as the live path does (small first batch, then full ones) and measure it."""
    sizes = itertools.chain([first_batch], itertools.repeat(renderer.batch))
    t0 = time.perf_counter()
    first = 0.0
    poses: list[MouthPose] = []
    for part in renderer.render_batches(pcm, rate, 0, sizes):
        poses.extend(part)
        if not first:
            renderer.frame(0, part[0])
            first = time.perf_counter() - t0
    render_s = time.perf_counter() - t0
    reference = renderer.face_input[0, 3:].transpose(1, 2, 0)[..., ::-1]  # the unmasked input face, RGB
    closed = np.ascontiguousarray(np.rint(reference * 255.0).astype(np.uint8))
    r, offset, sharpness = check_poses(renderer, poses, pcm, rate, renderer.fps, closed)
    speech = sum(p.patch is not None for p in poses)
    return CheckReport(len(poses), speech, render_s, first, r, offset, sharpness), poses
