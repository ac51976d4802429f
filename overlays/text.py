"""Text rendering for overlays: a CJK-capable font, wrapped lines, an outlined RGBA bitmap, cached.

OpenCV's own text cannot draw CJK, so text is drawn with Pillow into an RGBA bitmap once per distinct
text and alpha-blended onto frames (cheap per frame).
"""

from __future__ import annotations

import collections
import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
CJK_FONT_HINT = "sudo apt-get install fonts-noto-cjk"


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    for c in _CANDIDATES:
        if Path(c).is_file():
            return c
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}", "sans:lang=zh-cn"], capture_output=True, text=True,
                                 timeout=5, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out and Path(out).is_file() and "cjk" in out.lower():
            return out
    return None


@functools.lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = find_cjk_font()
    if path:
        return ImageFont.truetype(path, size)
    for fallback in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if Path(fallback).is_file():
            return ImageFont.truetype(fallback, size)
    return ImageFont.load_default(size)


def wrap(text: str, fnt: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int) -> list[str]:
    """Greedy wrap by width; breaks between words, or anywhere for CJK runs."""
    lines: list[str] = []
    line = ""
    for ch_or_word in _tokens(text):
        trial = line + ch_or_word
        if line and fnt.getlength(trial) > max_width:
            lines.append(line.rstrip())
            line = ch_or_word.lstrip()
        else:
            line = trial
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    word = ""
    for ch in text:
        if ord(ch) > 0x2E80:  # CJK and beyond: each character is breakable
            if word:
                out.append(word)
                word = ""
            out.append(ch)
        elif ch == " ":
            out.append(word + " ")
            word = ""
        else:
            word += ch
    if word:
        out.append(word)
    return out


@functools.lru_cache(maxsize=64)
def text_bitmap(text: str, size: int, max_width: int, max_lines: int = 2, color: tuple[int, int, int] = (255, 255, 255),
                box: tuple[int, int, int, int] | None = (0, 0, 0, 150)) -> np.ndarray:
    """An RGBA bitmap of ``text`` wrapped to ``max_width``: outlined glyphs over an optional box."""
    fnt = font(size)
    lines = wrap(text, fnt, max_width - size)[:max_lines] or [""]
    line_h = int(size * 1.35)
    width = int(min(max_width, max(fnt.getlength(line) for line in lines) + size))
    height = line_h * len(lines) + size // 2
    img = Image.new("RGBA", (max(1, width), max(1, height)), box or (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((size // 2, size // 4 + i * line_h), line, font=fnt, fill=(*color, 255),
                  stroke_width=max(1, size // 14), stroke_fill=(0, 0, 0, 255))
    return np.asarray(img)


_SPRITES: collections.OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = collections.OrderedDict()


def _sprite(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied colour and inverse alpha of a bitmap (uint16, alpha scaled to 0..256), computed once
    per bitmap: blending is then one multiply, one add and a shift per pixel, every frame."""
    key = id(rgba)
    hit = _SPRITES.get(key)
    if hit is not None and hit[0] is rgba:
        _SPRITES.move_to_end(key)
        return hit[1], hit[2]
    a = rgba[..., 3:4].astype(np.uint16)
    a += a >> 7  # 255 -> 256: opaque pixels replace the frame exactly
    pre, inv = rgba[..., :3].astype(np.uint16) * a, 256 - a
    _SPRITES[key] = (rgba, pre, inv)  # holding rgba keeps its id from being reused
    while len(_SPRITES) > 64:
        _SPRITES.popitem(last=False)
    return pre, inv


def blend(frame: np.ndarray, rgba: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``rgba`` onto ``frame`` (in place) at (x, y), clipped to the frame."""
    h, w = frame.shape[:2]
    bh, bw = rgba.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
    if x0 >= x1 or y0 >= y1:
        return
    pre, inv = _sprite(rgba)
    rows, cols = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
    dst = frame[y0:y1, x0:x1]
    mixed = dst * inv[rows, cols]
    mixed += pre[rows, cols]
    mixed >>= 8
    dst[:] = mixed
