"""Gift and paid-message banners: queued, each shown for a few seconds, never over the face.

Banners are scheduled by a pure function of their arrival times: each starts when it arrives or
when the previous one ends, whichever is later, so a burst of gifts plays one after another instead
of stacking or flickering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from overlays.scene import Banner
from overlays.text import blend, text_bitmap

Box = tuple[int, int, int, int]


def current_banner(banners: Sequence[tuple[float, Banner]], seconds: float, now: float) -> Banner | None:
    """The banner on screen at ``now``, given (arrival, banner) pairs in arrival order."""
    end = float("-inf")
    for arrived, banner in banners:
        start = max(arrived, end)
        end = start + seconds
        if start <= now < end:
            return banner
        if start > now:
            return None
    return None


def finished(banners: Sequence[tuple[float, Banner]], seconds: float, now: float) -> int:
    """How many leading banners are done (the caller may drop them)."""
    end = float("-inf")
    done = 0
    for arrived, _ in banners:
        end = max(arrived, end) + seconds
        if end > now:
            break
        done += 1
    return done


def prune(banners: Sequence[tuple[float, Banner]], seconds: float, now: float) -> list[tuple[float, Banner]]:
    """The banners not yet finished, with the first one's time moved to when it really starts, so the
    schedule of those left is exactly what it was (a queued banner is not cut short by the pruning)."""
    end = float("-inf")
    left: list[tuple[float, Banner]] = []
    for arrived, banner in banners:
        start = max(arrived, end)
        end = start + seconds
        if end > now:
            left.append((start if not left else arrived, banner))
    return left


def _overlap(a: Box, b: Box) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def place_clear_of(face: Box | None, size: tuple[int, int], frame_size: tuple[int, int],
                   candidates: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The first candidate position whose box does not touch the (padded) face box, else the one
    covering least of it."""
    bw, bh = size
    if face is None:
        return candidates[0]
    pad = face[2] // 6
    padded = (face[0] - pad, face[1] - pad, face[2] + 2 * pad, face[3] + 2 * pad)
    return min(candidates, key=lambda xy: _overlap((xy[0], xy[1], bw, bh), padded))


def banner_text(banner: Banner) -> str:
    amount = f"  {banner.amount}" if banner.amount else ""
    return f"{banner.who}  {banner.what}{amount}"


def draw_banner(frame: np.ndarray, banners: Sequence[tuple[float, Banner]], seconds: float, now: float,
                face: Box | None) -> None:
    banner = current_banner(banners, seconds, now)
    if banner is None:
        return
    h, w = frame.shape[:2]
    size = max(12, h // 26)
    bmp = text_bitmap(banner_text(banner), size, int(w * 0.5), 1, (255, 225, 90), (150, 20, 60, 200))
    bh, bw = bmp.shape[:2]
    m = h // 30
    candidates = [((w - bw) // 2, m), (w - bw - m, m), (m, h // 2), (w - bw - m, h // 2), ((w - bw) // 2, h - bh - h // 5)]
    x, y = place_clear_of(face, (bw, bh), (w, h), candidates)
    blend(frame, bmp, x, y)
