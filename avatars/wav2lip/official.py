"""The official Wav2Lip pre- and post-processing, step by step (Rudrabha/Wav2Lip ``inference.py``).

The published checkpoints were trained and are run on faces read with OpenCV, so everything the
network sees and gives back is **BGR**. Our frames are RGB; the channel order is swapped exactly at
the network boundary and nowhere else. Step by step, as ``inference.py`` does it:

1. the detector's box (x1, y1, x2, y2) is padded by ``--pads`` (top, bottom, left, right; default
   0, 10, 0, 0 pixels: the chin) and clamped to the frame;
2. the crop is resized to 96x96 with ``cv2.resize``'s default (bilinear) interpolation;
3. a copy has its lower half (rows 48..95) set to zero; masked and unmasked faces are concatenated
   on the channel axis (masked first: 6 channels), divided by 255, laid out N, C, H, W;
4. the audio is a 16 kHz mel spectrogram (``avatars.wav2lip.audio``); frame i takes the 16 mel
   columns from ``int(80 * (i / fps))``, the last window ending at the spectrogram's end;
5. the output (N, 3, 96, 96, sigmoid in [0, 1]) is multiplied by 255 and cast to uint8 (truncating,
   as ``astype(np.uint8)`` does), BGR, then resized back to the box.

Step 5's hard paste is the one place we differ on purpose: ``avatars.paste`` blends the lower face
in with a feathered mask so no seam shows (the network's output is identical either way).
"""

from __future__ import annotations

import cv2
import numpy as np

IMG_SIZE = 96
DEFAULT_PADS = (0, 10, 0, 0)
"""inference.py ``--pads``: top, bottom, left, right, in pixels of the frame."""


def padded_box(face_box: tuple[int, int, int, int], shape: tuple[int, ...],
               pads: tuple[int, int, int, int] = DEFAULT_PADS) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the crop Wav2Lip sees: the face box ``(x, y, w, h)`` padded and clamped."""
    x, y, w, h = face_box
    top, bottom, left, right = pads
    height, width = shape[:2]
    return (max(0, int(x) - left), max(0, int(y) - top),
            min(width, int(x + w) + right), min(height, int(y + h) + bottom))


def face_input(frame_rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(1, 6, 96, 96) float32: the network's face input for one RGB frame and its padded box."""
    x1, y1, x2, y2 = box
    face = cv2.resize(np.ascontiguousarray(frame_rgb[y1:y2, x1:x2, ::-1]), (IMG_SIZE, IMG_SIZE))  # BGR, bilinear
    masked = face.copy()
    masked[IMG_SIZE // 2:] = 0
    both = np.concatenate((masked, face), axis=2).astype(np.float32) / 255.0
    return both.transpose(2, 0, 1)[None]


def faces_from_output(pred: np.ndarray) -> np.ndarray:
    """(N, 3, 96, 96) network output in [0, 1] (BGR) -> (N, 96, 96, 3) uint8 RGB faces."""
    bgr = (np.clip(pred, 0.0, 1.0).transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(bgr[..., ::-1])
