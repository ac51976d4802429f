"""Overlays: pure functions that draw on a frame (subtitles, chat ticker, product card, gift banner),
with CJK text rendered correctly. ``draw_scene`` draws a whole ``OverlayScene`` snapshot."""

from overlays.chat import draw_chat
from overlays.scene import Banner, OverlayScene, ProductView, SceneOverlay, Word, draw_scene
from overlays.subtitles import draw_subtitle
from overlays.text import find_cjk_font

__all__ = ["Banner", "OverlayScene", "ProductView", "SceneOverlay", "Word", "draw_chat", "draw_scene",
           "draw_subtitle", "find_cjk_font"]
