"""Chat ticker: the last few accepted viewer messages, top left, newest at the bottom."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from overlays.text import blend, text_bitmap


def draw_chat(frame: np.ndarray, state: Any) -> None:
    draw_chat_lines(frame, list(getattr(state, "chat", ())))


def draw_chat_lines(frame: np.ndarray, lines: Sequence[str]) -> None:
    if not lines:
        return
    h, w = frame.shape[:2]
    size = max(10, h // 40)
    y = h // 30
    for line in list(lines)[-6:]:
        bmp = text_bitmap(line, size, int(w * 0.3), 1, (255, 240, 200), (0, 0, 0, 110))
        blend(frame, bmp, w // 60, y)
        y += bmp.shape[0] + 4
