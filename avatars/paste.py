"""Pasting a generated face back into the frame without a seam.

The generated 96x96 face is resized to the face box and blended in with a feathered mask covering the
lower face (where the mouth and jaw move); the mask is exactly zero on the box border, so every pixel
outside the box, and inside it away from the mouth, stays byte-identical. Before blending, the
generated patch's colour statistics are matched to the original face under the mask, so skin tone
and lighting do not shift.
"""

from __future__ import annotations

import cv2
import numpy as np


def wav2lip_box(face_box: tuple[int, int, int, int], shape: tuple[int, ...], bottom_pad: float = 0.1) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the crop Wav2Lip sees: the face box with the chin included."""
    x, y, w, h = face_box
    height, width = shape[:2]
    return max(0, x), max(0, y), min(width, x + w), min(height, int(y + h * (1 + bottom_pad)))


class PasteBack:
    def __init__(self, base: np.ndarray, box: tuple[int, int, int, int], feather: float = 0.08) -> None:
        x1, y1, x2, y2 = box
        if x2 - x1 < 8 or y2 - y1 < 8:
            raise ValueError(f"face box {box} is too small to paste into")
        self.box = box
        h, w = y2 - y1, x2 - x1
        mask = np.zeros((h, w), np.float32)
        # the lower face: an ellipse from below the eyes to the chin, inset from the box sides
        cv2.ellipse(mask, (w // 2, int(h * 0.68)), (int(w * 0.36), int(h * 0.30)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
        k = max(3, int(min(h, w) * feather) | 1)
        soft = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)
        border = max(2, k // 2)
        soft[:border], soft[-border:], soft[:, :border], soft[:, -border:] = 0, 0, 0, 0
        soft[soft < 1e-3] = 0.0
        self.mask = soft[..., None]
        self._weights = soft / max(1e-6, float(soft.sum()))
        crop = base[y1:y2, x1:x2].astype(np.float32)
        self._target_mean, self._target_std = self._stats(crop)

    def _stats(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self._weights[..., None]
        mean = (img * w).sum(axis=(0, 1))
        std = np.sqrt(((img - mean) ** 2 * w).sum(axis=(0, 1))) + 1e-3
        return mean, std

    def paste(self, frame: np.ndarray, face: np.ndarray) -> None:
        """Blend the generated ``face`` (any size, RGB) into ``frame`` in place."""
        x1, y1, x2, y2 = self.box
        gen = cv2.resize(face, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        mean, std = self._stats(gen)
        gen = (gen - mean) * np.minimum(self._target_std / std, 3.0) + self._target_mean
        region = frame[y1:y2, x1:x2]
        blended = gen * self.mask + region.astype(np.float32) * (1.0 - self.mask)
        region[:] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
