"""Chat sources: one module per platform, each a small client over a pure codec, all yielding ChatEvent."""

from chat_sources.base import ChatSource, EmitFn
from chat_sources.schema import ChatMessageError, event_from_json

__all__ = ["ChatMessageError", "ChatSource", "EmitFn", "event_from_json"]
