"""Chat ticker: the last few viewer messages, top left, newest at the bottom."""

from __future__ import annotations

from typing import Any

import numpy as np

from overlays.text import blend, text_bitmap


def draw_chat(frame: np.ndarray, state: Any) -> None:
    lines = list(getattr(state, "chat", ()))
    if not lines:
        return
    h, w = frame.shape[:2]
    size = max(10, h // 40)
    y = h // 30
    for line in lines[-6:]:
        bmp = text_bitmap(line, size, int(w * 0.3), 1, (255, 240, 200), (0, 0, 0, 110))
        blend(frame, bmp, w // 60, y)
        y += bmp.shape[0] + 4
