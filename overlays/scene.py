"""The overlay scene: an immutable snapshot of everything the overlays draw on one frame.

Overlays are pure functions of (frame, scene). The runtime builds a new ``OverlayScene`` when
something changes (a command from the panel, a gift, the product's price) and hands the reference
over; the clock draws whatever scene it holds at tick time. Nothing is mutated across threads: a
scene is frozen, and replacing the reference is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

OVERLAYS = ("subtitles", "chat", "product", "banner")


@dataclass(frozen=True)
class Word:
    """A word (or CJK character run) of the line being spoken, timed from the start of the line."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class ProductView:
    name: str
    price: float
    original_price: float | None = None
    """Drawn crossed out next to the price when higher than it."""
    stock: int | None = None
    sale_ends_at: float | None = None
    """Wall-clock time (epoch seconds) the flash sale ends; a countdown is drawn until then."""
    currency: str = "¥"


@dataclass(frozen=True)
class Banner:
    """A gift or paid message: who, what, how much."""

    who: str
    what: str
    amount: str = ""


@dataclass(frozen=True)
class OverlayScene:
    subtitle: str = ""
    words: tuple[Word, ...] = ()
    elapsed_s: float = 0.0
    """Time into the line being spoken (for word timings)."""
    chat: tuple[str, ...] = ()
    product: ProductView | None = None
    banners: tuple[tuple[float, Banner], ...] = ()
    """(arrival time, banner), oldest first; shown one after another (see overlays.banner)."""
    banner_seconds: float = 5.0
    face_box: tuple[int, int, int, int] | None = None
    """Where the host's face is (x, y, w, h): the banner and the product card never cover it."""
    enabled: frozenset[str] = field(default_factory=lambda: frozenset(OVERLAYS))
    language: str = "en"
    now: float = 0.0
    """Wall-clock time of the frame (epoch seconds): countdowns and banners."""

    def with_(self, **changes: Any) -> OverlayScene:
        return replace(self, **changes)


def draw_scene(frame: np.ndarray, scene: OverlayScene) -> None:
    """Draw every enabled overlay of ``scene`` onto ``frame`` (in place)."""
    from overlays.banner import draw_banner
    from overlays.chat import draw_chat_lines
    from overlays.product import draw_product_card
    from overlays.subtitles import draw_timed_subtitle

    on = scene.enabled
    if "chat" in on and scene.chat:
        draw_chat_lines(frame, scene.chat)
    if "product" in on and scene.product is not None:
        draw_product_card(frame, scene.product, scene.now, scene.language, scene.face_box)
    if "banner" in on and scene.banners:
        draw_banner(frame, scene.banners, scene.banner_seconds, scene.now, scene.face_box)
    if "subtitles" in on and scene.subtitle:
        draw_timed_subtitle(frame, scene.subtitle, scene.words, scene.elapsed_s)


def _word(w: Any) -> Word:
    """A word timing as the clock carries it: a ``Word``, or a (text, start_s, end_s) tuple."""
    if isinstance(w, Word):
        return w
    text, start, end = w
    return Word(float(start), float(end), str(text))


class SceneOverlay:
    """The clock-side adapter, called by the clock as ``overlay(frame, state)``.

    The scene comes from the clock's overlay state (``state.extra["scene"]``, delivered as a command
    through the clock's inbox) or, failing that, from ``self.scene``. The clock's state also carries what
    only the clock knows: the subtitle being spoken, its word timings (``words``: ``Word`` items or
    (text, start_s, end_s) tuples) and how far into it playback is (``spoken_s`` or ``elapsed_s``), and the
    accepted chat lines. Live product values (``state.extra["product"]``: name, price, stock) override the
    scene's; the card-only values (original price, sale end, currency) stay the scene's. Wall-clock time
    for countdowns and banners comes from ``now_fn``.
    """

    def __init__(self, scene: OverlayScene, now_fn: Any = None) -> None:
        import time

        self.scene = scene
        self._now = now_fn or time.time

    def __call__(self, frame: np.ndarray, state: Any) -> None:
        extra = getattr(state, "extra", None) or {}
        scene = extra.get("scene") or self.scene  # one read: the reference may be swapped at any moment
        subtitle = scene.subtitle or getattr(state, "subtitle", "")
        chat = scene.chat or tuple(getattr(state, "chat", ()))
        words = scene.words or tuple(_word(w) for w in getattr(state, "words", ()))
        elapsed = getattr(state, "spoken_s", getattr(state, "elapsed_s", scene.elapsed_s))
        product = scene.product
        live = extra.get("product")
        if isinstance(live, dict) and product is not None:
            product = replace(product, name=live.get("name", product.name), price=live.get("price", product.price),
                              stock=live.get("stock", product.stock))
        draw_scene(frame, replace(scene, subtitle=subtitle, chat=chat, words=words, elapsed_s=elapsed,
                                  product=product, now=self._now()))
