"""Subtitles: the sentence being spoken, centred near the bottom of the frame."""

from __future__ import annotations

from typing import Any

import numpy as np

from overlays.text import blend, text_bitmap


def draw_subtitle(frame: np.ndarray, state: Any) -> None:
    text = getattr(state, "subtitle", "")
    if not text:
        return
    h, w = frame.shape[:2]
    size = max(14, h // 24)
    bmp = text_bitmap(text, size, int(w * 0.8))
    blend(frame, bmp, (w - bmp.shape[1]) // 2, h - bmp.shape[0] - h // 18)
