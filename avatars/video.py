"""Idle-video avatars: a short loop of the host, played forward then backward (ping-pong) so it never
jumps, with the face found per frame (``streamer avatar prepare``'s cache).

Frames are kept JPEG-encoded in memory (a 10 s 720p loop is ~25 MB instead of ~700 MB) and decoded
per tick. Idle and speech use the same tick-indexed position in the loop, so speech continues from
the idle frame where it began and idle resumes from where speech ended.
"""

from __future__ import annotations

import collections
from pathlib import Path

import cv2
import numpy as np

from avatars.base import Avatar, FaceHints
from avatars.portrait import AvatarError, _fit, hints_from_face_box, key_onto, load_background
from avatars.prepare import prepare, read_frames


def pingpong(index: int, n: int) -> int:
    """0, 1, ..., n-1, n-2, ..., 1, 0, 1, ... (each end frame shown once per turn)."""
    if n <= 1:
        return 0
    period = 2 * n - 2
    k = index % period
    return k if k < n else period - k


class VideoAvatar(Avatar):
    def __init__(self, name: str, encoded: list[bytes], boxes: list[tuple[int, int, int, int]],
                 first: np.ndarray) -> None:
        super().__init__(name, first, hints_from_face_box(first, boxes[0]))
        self.encoded = encoded
        self.boxes = boxes
        self._hints_cache: dict[tuple[int, int, int, int], FaceHints] = {}
        self._decoded: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self.alphas: list[bytes] = []
        self._alpha: tuple[int, np.ndarray] | None = None

    def alpha_at(self, tick: int) -> np.ndarray | None:
        """The keyed foreground's alpha under tick ``tick`` (green-screen loops over a background video)."""
        if not self.alphas:
            return None
        p = self.position(tick)
        if self._alpha is None or self._alpha[0] != p:
            a = cv2.imdecode(np.frombuffer(self.alphas[p], np.uint8), cv2.IMREAD_GRAYSCALE)
            if a is None:
                raise AvatarError(f"{self.name}: alpha of frame {p} does not decode")
            self._alpha = (p, a.astype(np.float32) / 255.0)
        return self._alpha[1]

    @property
    def frames(self) -> int:
        return len(self.encoded)

    @property
    def animated(self) -> bool:
        return True

    def base_at(self, tick: int) -> tuple[np.ndarray, FaceHints]:
        p = self.position(tick)
        return self.picture(p), self.hints_at(p)

    def position(self, tick: int) -> int:
        return pingpong(tick, len(self.encoded))

    def picture(self, position: int) -> np.ndarray:
        """The decoded loop frame (the last few are kept: ticks ask for the same one repeatedly)."""
        cached = self._decoded.get(position)
        if cached is not None:
            return cached
        img = cv2.imdecode(np.frombuffer(self.encoded[position], np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise AvatarError(f"{self.name}: frame {position} does not decode")
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        self._decoded[position] = rgb
        while len(self._decoded) > 8:
            self._decoded.popitem(last=False)
        return rgb

    def hints_at(self, position: int) -> FaceHints:
        box = self.boxes[position]
        if box not in self._hints_cache:
            self._hints_cache[box] = hints_from_face_box(self.picture(position), box)
        return self._hints_cache[box]


def load_video_avatar(path: str | Path, width: int, height: int, quality: int = 92, fps: float | None = None,
                      green_screen: bool = False, background: str | Path | None = None) -> VideoAvatar:
    """``fps``: the output rate; a loop shot at another rate is retimed (nearest frame) to play at its speed.
    ``green_screen``: every frame is keyed (with the key colour of the first) over ``background``; over a
    background video the per-frame alpha is kept (as PNG) so the renderer composites at each tick."""
    path = Path(path)
    info = prepare(path, progress=None)
    frames, src_fps = read_frames(info.media)
    if not frames:
        raise AvatarError(f"{path}: no frames")
    picks = list(range(len(frames)))
    if fps and src_fps and abs(src_fps - fps) > 0.01:
        n_out = max(1, round(len(frames) * fps / src_fps))
        picks = [min(len(frames) - 1, int(i * src_fps / fps)) for i in range(n_out)]
    encoded: list[bytes] = []
    alphas: list[bytes] = []
    boxes: list[tuple[int, int, int, int]] = []
    first: np.ndarray | None = None
    key = bg = backdrop = None
    if green_screen:
        from avatars.greenscreen import ChromaKey, border_colour

        key = ChromaKey(border_colour(frames[0]))
        bg, backdrop = load_background(background, width, height)
    for frame, (x, y, w, h) in ((frames[i], info.boxes[i]) for i in picks):
        if key is not None and bg is not None:
            fitted, scale, ox, oy, alpha = key_onto(frame, bg, width, height, key)
            if backdrop is not None:
                alphas.append(cv2.imencode(".png", np.rint(alpha * 255).astype(np.uint8))[1].tobytes())
        else:
            fitted, scale, ox, oy = _fit(frame, width, height)
        if first is None:
            first = fitted
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(fitted, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise AvatarError(f"{path}: cannot encode frame")
        encoded.append(jpg.tobytes())
        boxes.append((int(ox + x * scale), int(oy + y * scale), int(w * scale), int(h * scale)))
    assert first is not None
    avatar = VideoAvatar(path.stem, encoded, boxes, first)
    if backdrop is not None:
        avatar.backdrop, avatar.alphas = backdrop, alphas
    return avatar
