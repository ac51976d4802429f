"""Does a lip-sync checkpoint work? Render a clip and measure what a viewer would see.

- **sync**: the generated mouth's opening, frame by frame (how dark the mouth interior of the 96x96
  face is against the closed-mouth input), correlated with the loudness of the audio under each frame,
  at offsets of up to five frames either way, over the frames the network rendered (speech only: the
  silent frames keep the closed input face by construction, and counting them would reward any
  network that merely changes the face while there is sound). A working checkpoint opens the mouth
  with the voice: a correlation at an offset of zero to two frames. The thresholds are heuristics,
  not the official SyncNet scores: random weights measure r = 0 here (a mouth that does not move)
  and, with realistic activations, about 0.28; no trained checkpoint was available to calibrate on.
- **sharpness**: detail in the mouth region of the composed frames (variance of the Laplacian)
  against the same region of the untouched portrait. Wav2Lip's faces are 96x96, so softness is
  expected (0.1-0.2 on the drawn host's 256 px face box); reported, and warned about only when the
  mouth is nearly featureless (a washed-out output).
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
MOVES_MIN = 1.0
"""Standard deviation of the mouth opening over speech (grey levels) below which the mouth does not move."""
SHARPNESS_MIN = 0.05


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
    movement: float = 0.0
    """Standard deviation of the mouth opening over the rendered (speech) frames, grey levels."""

    @property
    def moves(self) -> bool:
        return self.movement >= MOVES_MIN

    @property
    def in_sync(self) -> bool:
        return self.moves and self.sync_r >= SYNC_MIN_R and abs(self.sync_offset) <= SYNC_MAX_OFFSET

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


def sync_score(opening: np.ndarray, loudness: np.ndarray, max_offset: int = 5,
               mask: np.ndarray | None = None) -> tuple[float, int]:
    """(best correlation, offset in frames the mouth lags the voice) over offsets -max..max; ``mask``:
    the frames of ``opening`` to count (the rendered ones)."""
    best = (0.0, 0)
    keep_all = np.ones(len(opening), bool) if mask is None else mask
    for k in range(-max_offset, max_offset + 1):
        keep = keep_all[max(0, k):len(opening) + min(0, k)]
        a = opening[max(0, k):len(opening) + min(0, k)][keep]
        b = loudness[max(0, -k):len(loudness) - max(0, k)][keep]
        if len(a) < 8 or a.std() < 1e-9 or b.std() < 1e-9:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if r > best[0]:
            best = (r, k)
    return best


def laplacian_detail(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def check_poses(renderer: Wav2LipRenderer, poses: list[MouthPose], pcm: np.ndarray, rate: int, fps: int,
                closed_face: np.ndarray) -> tuple[float, int, float, float]:
    """(sync r, sync offset, sharpness, movement) of rendered poses; ``closed_face``: the 96x96 input, RGB."""
    rendered = np.array([p.patch is not None for p in poses])
    opening = np.array([mouth_opening(p.patch, closed_face) if p.patch is not None else 0.0 for p in poses])
    loudness = loudness_per_frame(pcm, rate, fps, len(poses))
    movement = float(opening[rendered].std()) if rendered.any() else 0.0
    r, offset = sync_score(opening, loudness, mask=rendered)
    frame = renderer.frame
    x1, y1, x2, y2 = wav2lip_box(renderer.avatar.hints.face_box, renderer.avatar.image.shape, renderer.pads)
    mouth = (slice(y1 + (y2 - y1) // 2, y2), slice(x1 + (x2 - x1) // 5, x2 - (x2 - x1) // 5))
    reference = laplacian_detail(frame(0, None)[mouth])
    talking = [p for p in poses if p.patch is not None]
    ratios = [laplacian_detail(frame(0, MouthPose(p.open, p.wide, 0.0, patch=p.patch))[mouth]) / max(1e-9, reference)
              for p in talking[:: max(1, len(talking) // 12)]]
    return r, offset, float(np.median(ratios)) if ratios else 0.0, movement


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
    r, offset, sharpness, movement = check_poses(renderer, poses, pcm, rate, renderer.fps, closed)
    speech = sum(p.patch is not None for p in poses)
    return CheckReport(len(poses), speech, render_s, first, r, offset, sharpness, movement), poses
