"""Green-screen keying: a soft chroma key with spill suppression, composited over a background.

The key colour is measured from the picture's border (where the screen is) unless given. Alpha comes
from the distance to it in the CbCr plane with a smooth ramp, so hair and edges stay soft; green
spill on the subject is removed by limiting green to the brighter of red and blue (subjects on a
green screen avoid green clothes for this reason). Pure functions on RGB uint8 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def _cbcr(rgb: np.ndarray) -> np.ndarray:
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    return ycrcb[..., 1:]  # Cr, Cb


def border_colour(rgb: np.ndarray, width: int = 8) -> tuple[int, int, int]:
    edges = np.concatenate([rgb[:width].reshape(-1, 3), rgb[-width:].reshape(-1, 3), rgb[:, :width].reshape(-1, 3),
                            rgb[:, -width:].reshape(-1, 3)])
    c = np.median(edges, axis=0)
    return int(c[0]), int(c[1]), int(c[2])


@dataclass
class ChromaKey:
    key: tuple[int, int, int] | None = None
    similarity: float = 22.0
    """CbCr distance (0..~180) under which a pixel is fully background."""
    smoothness: float = 18.0
    """Width of the soft ramp above ``similarity``."""
    spill: float = 1.0

    def alpha(self, rgb: np.ndarray) -> np.ndarray:
        key = self.key or border_colour(rgb)
        key_cc = _cbcr(np.array([[key]], np.uint8))[0, 0]
        d = np.linalg.norm(_cbcr(rgb) - key_cc, axis=2)
        a = np.clip((d - self.similarity) / max(self.smoothness, 1e-3), 0.0, 1.0)
        return a * a * (3 - 2 * a)  # smoothstep

    def despill(self, rgb: np.ndarray) -> np.ndarray:
        out = rgb.astype(np.float32)
        limit = np.maximum(out[..., 0], out[..., 2])
        out[..., 1] -= self.spill * np.maximum(0.0, out[..., 1] - limit)  # the classic green limiter
        return out

    def composite(self, foreground: np.ndarray, background: np.ndarray) -> np.ndarray:
        if background.shape != foreground.shape:
            background = cv2.resize(background, (foreground.shape[1], foreground.shape[0]), interpolation=cv2.INTER_AREA)
        a = self.alpha(foreground)[..., None]
        fg = self.despill(foreground)
        return np.clip(np.rint(fg * a + background.astype(np.float32) * (1 - a)), 0, 255).astype(np.uint8)
