"""Overlays: functions that draw on a frame (subtitles, chat ticker), with CJK text rendered correctly."""

from overlays.chat import draw_chat
from overlays.subtitles import draw_subtitle
from overlays.text import find_cjk_font

__all__ = ["draw_chat", "draw_subtitle", "find_cjk_font"]
