"""Head motion and compositing of one output frame, with no full-frame work beyond the one warp.

Every tick the whole picture sways, breathes and nods: one affine warp of the base picture, which
the clock needs whether the host speaks or not. What speech and blinks change (the mouth, the pasted
face, the eyelids) lies in a small face region; ``Canvas`` keeps a working copy of the picture in
which only that region is restored and redrawn per frame, so a speaking frame costs an idle frame
plus a few hundred microseconds, no frame copies the full picture first, and every pixel outside
the region is bit-identical to the idle frame.

A green-screen host over a moving background is keyed per tick: the alpha is warped with the host
and blended over the background picture in 8-bit (``cv2.blendLinear``), not in float64 NumPy.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def head_matrix(tick: int, fps: float, size: tuple[int, int], energy: float, mouth_width: float) -> np.ndarray:
    """The 2x3 affine transform of tick ``tick``: breathing zoom, slow sway, a nod with speech energy."""
    t = tick / fps
    w, h = size
    scale = 1.02 + 0.006 * math.sin(2 * math.pi * t / 4.2)  # a 2 % zoom keeps the edges covered
    angle = 0.55 * math.sin(2 * math.pi * t / 7.3) + 0.25 * math.sin(2 * math.pi * t / 3.1 + 1.0)
    angle += 1.2 * energy * math.sin(2 * math.pi * t / 1.7)
    m = cv2.getRotationMatrix2D((w / 2.0, h * 1.02), angle, scale)
    m[1, 2] += -0.012 * mouth_width * 10 * energy * (0.5 + 0.5 * math.sin(2 * math.pi * t / 0.9))
    return m


def over_backdrop(host: np.ndarray, alpha: np.ndarray, backdrop: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The warped host keyed over ``backdrop`` with the warped ``alpha`` (float32, 0..1, base coords)."""
    h, w = host.shape[:2]
    a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.blendLinear(host, np.ascontiguousarray(backdrop), a, 1.0 - a)


def compose(picture: np.ndarray, m: np.ndarray, alpha: np.ndarray | None = None,
            backdrop: np.ndarray | None = None) -> np.ndarray:
    """A new output frame: ``picture`` warped by ``m`` and, for a keyed host, put over ``backdrop``."""
    h, w = picture.shape[:2]
    out = cv2.warpAffine(picture, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if alpha is not None and backdrop is not None:
        out = over_backdrop(out, alpha, backdrop, m)
    return out


class Canvas:
    """A working copy of the base picture where a frame's changes are drawn, region by region.

    ``begin(picture, region)`` returns an image equal to ``picture`` inside ``region`` (draw there,
    in full-frame coordinates) and equal to ``picture`` elsewhere too: the full copy happens only
    when the picture itself changes (an idle-video loop), otherwise only the region is restored.
    One thread uses a canvas (the clock's)."""

    def __init__(self) -> None:
        self._img: np.ndarray | None = None
        self._source: np.ndarray | None = None
        self._dirty: tuple[int, int, int, int] | None = None

    def begin(self, picture: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
        img = self._img
        if img is None or img.shape != picture.shape or self._source is not picture:
            img = self._img = picture.copy()
            self._source = picture
        elif self._dirty is not None:
            x1, y1, x2, y2 = self._dirty
            img[y1:y2, x1:x2] = picture[y1:y2, x1:x2]
        self._dirty = region
        return img
