"""The product card: name, price with the original price crossed out, stock, flash-sale countdown.

Drawn at the right edge (or the left, if the face is there). The card is rendered with Pillow once
per distinct content (the countdown changes it once a second) and alpha-blended per frame.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

from overlays.banner import place_clear_of
from overlays.scene import ProductView
from overlays.text import blend, font

LABELS = {
    "zh": {"stock": "库存 {n} 件", "sold_out": "已售罄", "ends": "限时 {t}", "last": "仅剩 {n} 件"},
    "en": {"stock": "{n} in stock", "sold_out": "sold out", "ends": "ends in {t}", "last": "only {n} left"},
}


def price_text(value: float, currency: str) -> str:
    return f"{currency}{value:,.2f}".replace(".00", "")


def countdown(seconds_left: float) -> str:
    s = max(0, math.ceil(seconds_left))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


def card_lines(view: ProductView, now: float, language: str) -> list[tuple[str, str]]:
    """(style, text) lines of the card: what a viewer reads, in the stream's language."""
    labels = LABELS["zh" if language.lower().startswith("zh") else "en"]
    lines = [("name", view.name), ("price", price_text(view.price, view.currency))]
    if view.original_price is not None and view.original_price > view.price:
        lines.append(("was", price_text(view.original_price, view.currency)))
    if view.stock is not None:
        key = "sold_out" if view.stock <= 0 else ("last" if view.stock <= 10 else "stock")
        lines.append(("stock", labels[key].format(n=view.stock)))
    if view.sale_ends_at is not None and view.sale_ends_at > now:
        lines.append(("countdown", labels["ends"].format(t=countdown(view.sale_ends_at - now))))
    return lines


_STYLE = {"name": (1.0, (255, 255, 255)), "price": (1.6, (255, 80, 70)), "was": (0.9, (190, 190, 190)),
          "stock": (0.9, (255, 255, 255)), "countdown": (1.0, (255, 220, 80))}


@functools.lru_cache(maxsize=16)
def card_bitmap(lines: tuple[tuple[str, str], ...], size: int, max_width: int) -> np.ndarray:
    rows = []
    for style, text in lines:
        scale, color = _STYLE[style]
        px = max(8, int(size * scale))
        fnt = font(px)
        while fnt.getlength(text) > max_width - size and len(text) > 1:
            text = text[:-2] + "…"
        rows.append((style, text, fnt, color, px))
    width = int(min(max_width, max(f.getlength(t) for _, t, f, _, _ in rows) + size * 1.5))
    heights = [int(px * 1.3) for *_, px in rows]
    img = Image.new("RGBA", (width, sum(heights) + size), (20, 20, 28, 190))
    draw = ImageDraw.Draw(img)
    y = size // 2
    for (style, text, fnt, color, px), lh in zip(rows, heights, strict=True):
        x = size * 3 // 4
        draw.text((x, y), text, font=fnt, fill=(*color, 255), stroke_width=max(1, px // 16),
                  stroke_fill=(0, 0, 0, 255))
        if style == "was":  # the original price, struck through
            left, top, right, bottom = draw.textbbox((x, y), text, font=fnt)
            mid = (top + bottom) // 2
            draw.line((left - 2, mid, right + 2, mid), fill=(255, 80, 70, 255), width=max(2, px // 10))
        y += lh
    return np.asarray(img)


def draw_product_card(frame: np.ndarray, view: ProductView, now: float, language: str,
                      face: tuple[int, int, int, int] | None) -> None:
    h, w = frame.shape[:2]
    size = max(12, h // 28)
    bmp = card_bitmap(tuple(card_lines(view, now, language)), size, int(w * 0.3))
    bh, bw = bmp.shape[:2]
    m = h // 30
    x, y = place_clear_of(face, (bw, bh), (w, h), [(w - bw - m, h // 3), (m, h // 3), (w - bw - m, m), (m, m)])
    blend(frame, bmp, x, y)
