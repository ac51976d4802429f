"""Pasting a generated face back into the frame without a seam, in well under a millisecond.

The official inference resizes the 96x96 output to the face box and pastes it hard; we blend it in
with a feathered mask over the lower face (where the mouth and jaw move). The mask is exactly zero
on the box border, so every pixel outside the box, and inside it away from the mouth, stays
byte-identical. Only the mask's bounding rectangle is touched, in 8-bit (``cv2.blendLinear``).

Colour: the network reproduces the unmasked upper half of its input, so any colour drift of the
output shows there; a per-channel gain and offset that maps the output's upper half onto the
input's is applied to the whole 96x96 face before it is resized (linear, so the same as applying
it after, at a fraction of the cost). The mouth, whose colours legitimately change as it opens,
does not enter the statistics.
"""

from __future__ import annotations

import cv2
import numpy as np

from avatars.wav2lip.official import DEFAULT_PADS, IMG_SIZE, padded_box


def wav2lip_box(face_box: tuple[int, int, int, int], shape: tuple[int, ...],
                pads: tuple[int, int, int, int] = DEFAULT_PADS) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the crop Wav2Lip sees: the face box padded as the official ``--pads``."""
    return padded_box(face_box, shape, pads)


def _upper_stats(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = cv2.meanStdDev(np.ascontiguousarray(face[: IMG_SIZE // 2]))
    return mean[:, 0].astype(np.float32), std[:, 0].astype(np.float32) + 1.0


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
        ys, xs = np.nonzero(soft)
        self.rect = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        """The mask's bounding rectangle, in box coordinates: the only pixels a paste writes."""
        rx1, ry1, rx2, ry2 = self.rect
        self._weight = np.ascontiguousarray(soft[ry1:ry2, rx1:rx2])
        self._weight_base = 1.0 - self._weight
        reference = cv2.resize(np.ascontiguousarray(base[y1:y2, x1:x2]), (IMG_SIZE, IMG_SIZE))
        self._ref_mean, self._ref_std = _upper_stats(reference)

    def match_colour(self, face: np.ndarray) -> np.ndarray:
        """``face`` (96x96 RGB uint8) with its upper half's colour statistics mapped onto the input's."""
        mean, std = _upper_stats(face)
        gain = np.clip(self._ref_std / std, 0.5, 2.0)
        offset = self._ref_mean - mean * gain
        return cv2.transform(np.ascontiguousarray(face), np.hstack([np.diag(gain), offset[:, None]]))  # saturating

    def paste(self, frame: np.ndarray, face: np.ndarray) -> None:
        """Blend the generated ``face`` (96x96 RGB uint8) into ``frame`` in place."""
        x1, y1, x2, y2 = self.box
        rx1, ry1, rx2, ry2 = self.rect
        big = cv2.resize(self.match_colour(face), (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        region = frame[y1 + ry1:y1 + ry2, x1 + rx1:x1 + rx2]
        region[:] = cv2.blendLinear(np.ascontiguousarray(big[ry1:ry2, rx1:rx2]), np.ascontiguousarray(region),
                                    self._weight, self._weight_base)
