"""Shop overlays: product card, gift banner, timed subtitles, chat ticker; CJK drawn as glyphs, not boxes."""

import numpy as np
import pytest

from overlays import Banner, OverlayScene, ProductView, SceneOverlay, Word, draw_scene
from overlays.banner import current_banner, finished, prune
from overlays.product import card_bitmap, card_lines, countdown
from overlays.subtitles import spoken_text
from overlays.text import find_cjk_font, text_bitmap

pytestmark = pytest.mark.skipif(find_cjk_font() is None, reason="needs fonts-noto-cjk")
FACE = (500, 150, 280, 320)


def _frame(w=1280, h=720):
    return np.full((h, w, 3), 60, np.uint8)


def _ink(bmp):
    return bmp[..., 3] > 200


def test_cjk_characters_are_drawn_as_distinct_glyphs():
    # a font without CJK draws every character as the same "tofu" box
    a, b = text_bitmap("咖", 40, 400, 1, box=None), text_bitmap("啡", 40, 400, 1, box=None)
    assert _ink(a).sum() > 50 and _ink(b).sum() > 50
    assert a.shape != b.shape or (_ink(a) != _ink(b)).mean() > 0.05


def test_product_card_lines_in_chinese_and_english():
    view = ProductView("手冲咖啡壶", 39, 59, 7, sale_ends_at=1000.0 + 299.2, currency="¥")
    zh = card_lines(view, 1000.0, "zh")
    assert zh == [("name", "手冲咖啡壶"), ("price", "¥39"), ("was", "¥59"), ("stock", "仅剩 7 件"), ("countdown", "限时 05:00")]
    en = card_lines(ProductView("AeroBrew", 49.5, None, 0, None, "$"), 0.0, "en")
    assert en == [("name", "AeroBrew"), ("price", "$49.50"), ("stock", "sold out")]
    assert card_lines(ProductView("X", 10, 8, None, sale_ends_at=5.0), 6.0, "en") == [("name", "X"), ("price", "¥10")]
    assert countdown(3725) == "1:02:05" and countdown(-3) == "00:00"


def test_original_price_is_struck_through_in_red():
    lines = (("name", "咖啡壶"), ("price", "¥39"), ("was", "¥59"))
    card = card_bitmap(lines, 30, 400)
    red = (card[..., 0] > 200) & (card[..., 1] < 120) & (card[..., 2] < 120) & (card[..., 3] > 200)
    rows = red.sum(axis=1)
    # the price is red too; the strike is a long horizontal red run in the lower third (the "was" row)
    lower = rows[card.shape[0] * 2 // 3:]
    assert lower.max() > 40
    plain = card_bitmap(lines[:2] + (("stock", "¥59"),), 30, 400)
    pred = (plain[..., 0] > 200) & (plain[..., 1] < 120) & (plain[..., 2] < 120) & (plain[..., 3] > 200)
    assert pred.sum(axis=1)[plain.shape[0] * 2 // 3:].max() < lower.max() / 2


def test_banners_queue_one_after_another():
    a, b, c = Banner("小明", "火箭", "500 CNY"), Banner("Sam", "rose x3"), Banner("Ann", "super chat", "30 USD")
    queue = [(0.0, a), (1.0, b), (20.0, c)]
    assert [current_banner(queue, 5, t) for t in (0.5, 4.9, 5.1, 9.9, 10.1, 21)] == [a, a, b, b, None, c]
    assert finished(queue, 5, 10.5) == 2 and finished(queue, 5, 3) == 0
    burst = [(0.0, Banner(f"viewer{i}", "rose")) for i in range(4)]  # four gifts at once: 0-5, 5-10, 10-15, 15-20
    left = prune(burst, 5, 12.0)
    assert [b.who for _, b in left] == ["viewer2", "viewer3"]
    assert [current_banner(left, 5, t).who for t in (12.0, 14.9, 15.1)] == ["viewer2", "viewer2", "viewer3"]


def test_banner_and_product_card_never_cover_the_face():
    scene = OverlayScene(product=ProductView("手冲咖啡壶", 39, 59, 7), banners=((0.0, Banner("小明", "火箭 x2", "1000 CNY")),),
                         face_box=FACE, now=1.0, enabled=frozenset({"product", "banner"}), language="zh")
    frame = _frame()
    draw_scene(frame, scene)
    x, y, w, h = FACE
    assert (frame[y:y + h, x:x + w] == 60).all()  # untouched
    assert (frame != 60).any(axis=2).sum() > 5000  # and both were drawn somewhere
    # a face in the top middle pushes the banner elsewhere, still clear of it
    top_face = (490, 10, 300, 300)
    frame = _frame()
    draw_scene(frame, OverlayScene(banners=((0.0, Banner("Sam", "Super Chat", "30 USD")),), face_box=top_face, now=1.0))
    x, y, w, h = top_face
    assert (frame[y:y + h, x:x + w] == 60).all() and (frame != 60).any()


def test_subtitles_follow_word_timings_in_both_languages():
    en = (Word(0.0, 0.3, "Flash"), Word(0.35, 0.6, "sale"), Word(0.7, 1.0, "now!"))
    assert [spoken_text(en, t) for t in (0.1, 0.4, 2.0)] == ["Flash", "Flash sale", "Flash sale now!"]
    zh = (Word(0.0, 0.4, "限时"), Word(0.4, 0.8, "秒杀"), Word(0.8, 1.2, "开始"))
    assert spoken_text(zh, 0.5) == "限时秒杀"
    early, late = _frame(640, 360), _frame(640, 360)
    draw_scene(early, OverlayScene(subtitle="限时秒杀开始", words=zh, elapsed_s=0.1))
    draw_scene(late, OverlayScene(subtitle="限时秒杀开始", words=zh, elapsed_s=1.0))
    assert (late != 60).any(axis=2).sum() > 1.8 * (early != 60).any(axis=2).sum()


def test_toggled_off_overlays_are_not_drawn_and_the_adapter_uses_the_clock_subtitle():
    class ClockState:
        subtitle = "欢迎来到直播间"
        chat = ["小明: 多少钱？"]

    overlay = SceneOverlay(OverlayScene(enabled=frozenset()), now_fn=lambda: 0.0)
    frame = _frame(640, 360)
    overlay(frame, ClockState())
    assert (frame == 60).all()
    overlay.scene = overlay.scene.with_(enabled=frozenset({"subtitles", "chat"}))
    overlay(frame, ClockState())
    drawn = (frame != 60).any(axis=2)
    assert drawn[250:].any() and drawn[:60, :200].any()  # subtitle at the bottom, ticker top left


def test_the_adapter_reveals_words_when_the_clock_state_carries_timings():
    class ClockState:
        subtitle = "Flash sale now!"
        chat: list = []
        words = (Word(0.0, 0.3, "Flash"), Word(0.35, 0.6, "sale"), Word(0.7, 1.0, "now!"))
        elapsed_s = 0.1

    overlay = SceneOverlay(OverlayScene(enabled=frozenset({"subtitles"})), now_fn=lambda: 0.0)
    first, later = _frame(640, 360), _frame(640, 360)
    overlay(first, ClockState())
    ClockState.elapsed_s = 0.9
    overlay(later, ClockState())
    assert (later != 60).any(axis=2).sum() > 1.5 * (first != 60).any(axis=2).sum() > 0


def test_the_adapter_takes_its_scene_and_live_product_values_from_the_clock_state(monkeypatch):
    class ClockState:
        subtitle = ""
        chat: list = []
        words = (("限时", 0.0, 0.4), ("秒杀", 0.4, 0.8))  # the clock's (text, start_s, end_s) form
        spoken_s = 0.5
        extra = {"scene": OverlayScene(product=ProductView("咖啡壶", 39, 59, 7), enabled=frozenset({"product"})),
                 "product": {"name": "咖啡壶", "price": 29, "stock": 3}}

    drawn = []
    overlay = SceneOverlay(OverlayScene(enabled=frozenset()), now_fn=lambda: 0.0)
    monkeypatch.setattr("overlays.scene.draw_scene", lambda frame, scene: drawn.append(scene))
    overlay(_frame(64, 64), ClockState())
    (scene,) = drawn
    assert (scene.product.price, scene.product.stock, scene.product.original_price) == (29, 3, 59)
    assert [w.text for w in scene.words] == ["限时", "秒杀"] and scene.elapsed_s == 0.5
    assert spoken_text(scene.words, scene.elapsed_s) == "限时秒杀"
