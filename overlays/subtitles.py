"""Subtitles: the sentence being spoken, centred near the bottom of the frame.

With word timings (when the voice engine gives them), the line is revealed word by word as it is
spoken; without them the whole sentence shows for as long as it plays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from overlays.scene import Word
from overlays.text import blend, text_bitmap


def draw_subtitle(frame: np.ndarray, state: Any) -> None:
    text = getattr(state, "subtitle", "")
    if not text:
        return
    _draw(frame, text)


def _is_cjk(ch: str) -> bool:
    return ord(ch) > 0x2E80


def spoken_text(words: Sequence[Word], elapsed_s: float) -> str:
    """The words started by ``elapsed_s``, joined (spaces between Latin words, none around CJK)."""
    out = ""
    for word in words:
        if word.start_s > elapsed_s:
            break
        piece = word.text.strip()
        if out and piece and not _is_cjk(out[-1]) and not _is_cjk(piece[0]):
            out += " "
        out += piece
    return out


def draw_timed_subtitle(frame: np.ndarray, text: str, words: Sequence[Word], elapsed_s: float) -> None:
    shown = spoken_text(words, elapsed_s) if words else text
    if shown:
        _draw(frame, shown)


def _draw(frame: np.ndarray, text: str) -> None:
    h, w = frame.shape[:2]
    size = max(14, h // 24)
    bmp = text_bitmap(text, size, int(w * 0.8))
    blend(frame, bmp, (w - bmp.shape[1]) // 2, h - bmp.shape[0] - h // 18)
