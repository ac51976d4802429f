"""``stylize``: a portrait through AnimeGANv2, the face at full resolution, pasted back.

AnimeGANv2's face styles were trained on 512x512 face crops. A whole portrait at 512 gives the face
too few pixels, a face crop alone leaves a photographic body around an anime face. So two passes:

1. the whole picture (longest side capped at ``max_side``) gives the style everywhere;
2. a square around the detected face (about 2.2 face widths: hair, chin and neck included), at
   ``face_size``, gives the face its detail; it is pasted back over pass 1 with a feathered edge so
   no seam shows where the two meet.

The result keeps the input's size and must still have a face the lip-sync detector finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatars.portrait import detect_face
from avatars.studio import INSTALL_HINT, StudioError
from avatars.studio.sd_model import cache_dir

STYLES = {"anime": "face_paint_512_v2.pt", "anime_v1": "face_paint_512_v1.pt", "paprika": "paprika.pt",
          "celeba": "celeba_distill.pt"}
"""Style names and the weights file each means (bryandlee/animegan2-pytorch's releases)."""


def default_weights(style: str, configured: str = "") -> Path:
    if style not in STYLES:
        raise StudioError(f"unknown style {style!r}: choose one of {', '.join(STYLES)} (or pass --weights PATH)")
    if configured and style == "anime":
        return Path(configured).expanduser()
    return cache_dir() / "animegan" / STYLES[style]


@dataclass(frozen=True)
class FaceCrop:
    x: int
    y: int
    side: int


def face_square(box: tuple[int, int, int, int], width: int, height: int, scale: float = 2.2) -> FaceCrop:
    """A square around the face, ``scale`` face widths, shifted (not shrunk) to stay inside the picture."""
    x, y, w, h = box
    side = int(min(max(w, h) * scale, width, height))
    cx, cy = x + w / 2, y + h * 0.55  # a little below the box centre: the chin matters more than the crown
    x0 = int(np.clip(round(cx - side / 2), 0, width - side))
    y0 = int(np.clip(round(cy - side / 2), 0, height - side))
    return FaceCrop(x0, y0, side)


def feather_mask(side: int, edge: float = 0.12) -> np.ndarray:
    """1 inside, a raised-cosine ramp to 0 over ``edge`` of the side at the borders."""
    ramp = max(1, int(side * edge))
    t = np.ones(side, np.float32)
    r = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp, dtype=np.float32))
    t[:ramp], t[side - ramp:] = r, r[::-1]
    return np.minimum.outer(t, t)[..., None]


class Stylizer:
    def __init__(self, weights: str | Path, device: str = "auto") -> None:
        try:
            import torch

            from avatars.studio.animegan import load_generator
        except ImportError:
            raise StudioError(f"torch is not installed: {INSTALL_HINT}") from None
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.weights = Path(weights)
        self.model: Any = load_generator(weights, self.device)

    def run(self, rgb: np.ndarray) -> np.ndarray:
        """One generator pass, same size out."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        with torch.inference_mode():
            y = self.model(x.to(self.device, next(self.model.parameters()).dtype)).float().clamp(-1, 1)
        return np.rint((y[0].permute(1, 2, 0).cpu().numpy() + 1.0) * 127.5).astype(np.uint8)

    def stylize(self, rgb: np.ndarray, face_size: int = 512, max_side: int = 1024) -> np.ndarray:
        box = detect_face(rgb)
        if box is None:
            raise StudioError("no face found in the picture to stylize: use a frontal, well-lit portrait (one person, "
                              "face unobstructed)")
        h, w = rgb.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        small = cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(self.run(small), (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        sq = face_square(box, w, h)
        crop = rgb[sq.y:sq.y + sq.side, sq.x:sq.x + sq.side]
        interp = cv2.INTER_AREA if sq.side > face_size else cv2.INTER_CUBIC
        face = self.run(cv2.resize(crop, (face_size, face_size), interpolation=interp))
        face = cv2.resize(face, (sq.side, sq.side), interpolation=cv2.INTER_AREA if sq.side < face_size
                          else cv2.INTER_CUBIC).astype(np.float32)
        m = feather_mask(sq.side)
        region = out[sq.y:sq.y + sq.side, sq.x:sq.x + sq.side]
        out[sq.y:sq.y + sq.side, sq.x:sq.x + sq.side] = m * face + (1 - m) * region
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
