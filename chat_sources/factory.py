"""Chat sources from the profile's ``[[chat]]`` entries: the one place a source is built.

The app calls ``build_sources(settings, token=control_token)`` once and then only
``await source.run(emit)`` per source (the source supervises itself) and reads ``state`` and
``last_error`` for ``/api/status``. ``platform_source`` is what ``streamer listen`` uses.
Platform modules are imported on demand: a profile without Bilibili never imports its client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_sources.base import ChatSource

if TYPE_CHECKING:
    from streamer.config import Settings

PLATFORMS = ("bilibili", "douyin", "twitch")


def build_sources(settings: Settings, *, token: str | None) -> list[ChatSource]:
    """One source per ``[[chat]]`` entry. ``token``: the control token (environment or generated), which
    the local websocket requires for paid kinds and moderator claims."""
    from streamer.config import ReplaySource, WebsocketSource

    sources: list[ChatSource] = []
    for s in settings.chat:
        if isinstance(s, ReplaySource):
            from chat_sources.replay import ReplayChatSource

            sources.append(ReplayChatSource(settings.resolve(s.path), s.speed, s.loop, s.room))
        elif isinstance(s, WebsocketSource):
            from chat_sources.websocket import WebsocketChatSource

            sources.append(WebsocketChatSource(s.host, s.port, s.room, token=token,
                                               allowed_origins=s.allowed_origins, allow_remote=s.allow_remote))
        else:
            sources.append(platform_source(s.type, str(getattr(s, "room", "") or getattr(s, "channel", "")), s.url))
    return sources


def platform_source(platform: str, room: str, url: str | None = None) -> ChatSource:
    """A live-platform chat client by name (bilibili, douyin, twitch); secrets come from the environment."""
    if platform == "bilibili":
        from chat_sources.bilibili import BilibiliChatSource

        return BilibiliChatSource(int(room), url=url)
    if platform == "douyin":
        from chat_sources.douyin import DouyinChatSource

        return DouyinChatSource(room, url=url)
    if platform == "twitch":
        from chat_sources.twitch import TwitchChatSource

        return TwitchChatSource(room, url=url)
    raise ValueError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")


def no_chat_warning(settings: Settings) -> str | None:
    """A line for start-up (and doctor) when the profile has no chat source: the host would talk to
    nobody but idle scripts, and a new user would not know why nothing they type is answered."""
    if settings.chat:
        return None
    return (f"{settings.source_file}: no chat source configured: the host will only run idle scripts. Add a "
            "[[chat]] entry (type = \"websocket\", \"replay\", \"bilibili\", \"douyin\" or \"twitch\"), see README.md")
