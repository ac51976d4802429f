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

from avatars.base import Avatar
from avatars.portrait import AvatarError, _fit, hints_from_face_box
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
        self._hints_cache: dict[int, object] = {}
        self._decoded: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    @property
    def frames(self) -> int:
        return len(self.encoded)

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

    def hints_at(self, position: int):  # type: ignore[no-untyped-def]
        box = self.boxes[position]
        if box not in self._hints_cache:
            self._hints_cache[box] = hints_from_face_box(self.picture(position), box)  # type: ignore[index]
        return self._hints_cache[box]  # type: ignore[index]


def load_video_avatar(path: str | Path, width: int, height: int, quality: int = 92, fps: float | None = None) -> VideoAvatar:
    """``fps``: the output rate; a loop shot at another rate is retimed (nearest frame) to play at its speed."""
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
    boxes: list[tuple[int, int, int, int]] = []
    first: np.ndarray | None = None
    for frame, (x, y, w, h) in ((frames[i], info.boxes[i]) for i in picks):
        fitted, scale, ox, oy = _fit(frame, width, height)
        if first is None:
            first = fitted
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(fitted, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise AvatarError(f"{path}: cannot encode frame")
        encoded.append(jpg.tobytes())
        boxes.append((int(ox + x * scale), int(oy + y * scale), int(w * scale), int(h * scale)))
    assert first is not None
    return VideoAvatar(path.stem, encoded, boxes, first)
