"""Paste-back, colour matching and head motion on the GPU, for a Wav2Lip renderer running on CUDA.

On an H100 the generator runs thousands of frames/s, but paste-back and a 1280x720 warp per frame on
the CPU capped the whole path near 100 frames/s. Here the base picture (and a keyed host's alpha)
live on the device; per frame only the 96x96 face goes up and the finished frame comes down:
1. colour match (the same statistics as ``avatars.paste``) and a bilinear resize to the padded box
   (``F.interpolate``, half-pixel centres like ``cv2.resize``);
2. the feathered blend into the box;
3. the head-motion warp (``affine_grid`` + ``grid_sample``, reflection at the border like
   ``cv2.BORDER_REFLECT``) and, over a moving background, the alpha blend;
4. one 8-bit download.
Eyelids during a blink and the procedural mouth of a late frame are drawn on the CPU into the small
face region, which is uploaded the same way (a few hundred kilobytes).

The same code runs on the CPU (tests compare it there with the OpenCV path); it has not run on a GPU
in this project yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avatars.paste import PasteBack
from avatars.wav2lip.official import IMG_SIZE


def _to_device(img: np.ndarray, device: str) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(img)).to(device).permute(2, 0, 1).float()  # (3, H, W)


def pixel_to_theta(m: np.ndarray, width: int, height: int) -> np.ndarray:
    """The ``affine_grid`` theta (normalised output -> input coordinates, ``align_corners=False``) of
    OpenCV's forward pixel transform ``m`` (2x3, input -> output)."""
    import cv2

    inverse = np.vstack([cv2.invertAffineTransform(m), [0.0, 0.0, 1.0]])
    to_pixel = np.array([[width / 2.0, 0.0, (width - 1) / 2.0], [0.0, height / 2.0, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
    return (np.linalg.inv(to_pixel) @ inverse @ to_pixel)[:2]


class DeviceFrames:
    """Frames for one base picture, composed on ``device``."""

    def __init__(self, picture: np.ndarray, paste: PasteBack, device: str, alpha: np.ndarray | None = None) -> None:
        import torch

        self.device = device
        self.height, self.width = picture.shape[:2]
        self.base = _to_device(picture, device)
        self.paste = paste
        rx1, ry1, rx2, ry2 = paste.rect
        self.weight = torch.from_numpy(np.ascontiguousarray(paste.mask[ry1:ry2, rx1:rx2, 0])).to(device)
        self.ref_mean = torch.from_numpy(paste._ref_mean).to(device).view(3, 1, 1)
        self.ref_std = torch.from_numpy(paste._ref_std).to(device).view(3, 1, 1)
        self.alpha = None if alpha is None else torch.from_numpy(alpha).to(device)[None, None]

    def _pasted(self, img: Any, face: np.ndarray) -> None:
        import torch
        import torch.nn.functional as F

        x1, y1, x2, y2 = self.paste.box
        rx1, ry1, rx2, ry2 = self.paste.rect
        gen = torch.from_numpy(np.ascontiguousarray(face)).to(self.device).permute(2, 0, 1).float()
        upper = gen[:, : IMG_SIZE // 2]
        mean = upper.mean(dim=(1, 2), keepdim=True)
        std = upper.std(dim=(1, 2), unbiased=False, keepdim=True) + 1.0
        gain = (self.ref_std / std).clamp(0.5, 2.0)
        gen = (gen * gain + (self.ref_mean - mean * gain)).round().clamp(0, 255)
        big = F.interpolate(gen[None], size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)[0]
        big = big.round().clamp(0, 255)[:, ry1:ry2, rx1:rx2]
        region = img[:, y1 + ry1:y1 + ry2, x1 + rx1:x1 + rx2]
        img[:, y1 + ry1:y1 + ry2, x1 + rx1:x1 + rx2] = torch.lerp(region, big, self.weight)

    def frame(self, m: np.ndarray, face: np.ndarray | None = None,
              edit: tuple[tuple[int, int, int, int], np.ndarray] | None = None,
              backdrop: np.ndarray | None = None) -> np.ndarray:
        """The output frame: ``edit`` (a CPU-drawn region and its box) and ``face`` pasted into the base
        picture, warped by the forward transform ``m``, keyed over ``backdrop`` when there is an alpha."""
        import torch
        import torch.nn.functional as F

        img = self.base
        if face is not None or edit is not None:
            img = img.clone()
        if edit is not None:
            (x1, y1, x2, y2), pixels = edit
            img[:, y1:y2, x1:x2] = _to_device(pixels, self.device)
        if face is not None:
            self._pasted(img, face)
        theta = torch.from_numpy(pixel_to_theta(m, self.width, self.height)).float().to(self.device)[None]
        grid = F.affine_grid(theta, [1, 3, self.height, self.width], align_corners=False)
        out = F.grid_sample(img[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0]
        if self.alpha is not None and backdrop is not None:
            a = F.grid_sample(self.alpha, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
            out = torch.lerp(_to_device(backdrop, self.device), out, a)
        return out.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()
