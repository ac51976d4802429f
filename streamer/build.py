"""One builder for each part, from the settings: the only place that knows how the config maps to objects.

``streamer run``, ``streamer say``, ``streamer doctor`` and a persona switch all build their voice, avatar
and renderer here, so they cannot drift apart (a persona switch keeps Wav2Lip, green screen, background and
fps because it is built by the same function as the start). Every builder raises ``ConfigError`` naming
the file and the key when the config points at something that cannot be used.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from avatars.actions import ActionClip, load_clip
from avatars.base import Avatar
from avatars.portrait import DRAWN, AvatarError, load_avatar
from avatars.renderers import create_renderer
from chat_sources.base import ChatSource
from streamer.config import ConfigError, ReplaySource, Settings, WebsocketSource
from streamer.director.idle import Announcement, IdleScheduler
from streamer.director.moderation import ModerationRules, Moderator
from streamer.director.state import StateError, StateStore
from streamer.persona.profile import PersonaProfile
from streamer.sinks.base import Sink
from streamer.voice.base import TTS

log = logging.getLogger(__name__)


def build_tts(settings: Settings, profile: PersonaProfile | None = None) -> TTS:
    """The voice chain of ``profile`` (its [voice] table, else the profile's [voice] section):
    fallbacks, languages, cache and loudness live in streamer.voice.factory."""
    from streamer.voice.factory import build_voice

    return build_voice(settings, profile)


def avatar_path(settings: Settings, profile: PersonaProfile | None = None, override: str | None = None) -> str:
    """The avatar picture, loop or folder to use: an explicit one, the persona's, or the profile's."""
    image = override if override is not None else ((profile.avatar if profile else "") or settings.avatar.image)
    if not image or image.startswith(DRAWN):
        return image
    return str(settings.resolve(image))


def build_avatar(settings: Settings, profile: PersonaProfile | None = None, override: str | None = None) -> Avatar:
    a, st = settings.avatar, settings.stream
    image = avatar_path(settings, profile, override)
    try:
        return load_avatar(image, st.width, st.height, a.mouth_x, a.mouth_y, a.mouth_width, a.green_screen,
                           a.background and str(settings.resolve(a.background)), st.fps)
    except AvatarError as e:
        key = "avatar" if profile is not None and profile.avatar else "avatar.image"
        raise ConfigError(f"{settings.source_file}: {key}: {e}") from None


def build_renderer(settings: Settings, avatar: Avatar) -> Any:
    """Wav2Lip when configured and possible (else the procedural mouth, with the reason logged)."""
    a = settings.avatar
    return create_renderer(a.renderer, avatar, settings.stream.fps,
                           a.wav2lip_checkpoint and str(settings.resolve(a.wav2lip_checkpoint)), a.device,
                           a.precision, a.batch, a.backend, a.wav2lip_pads, lipsync_url=a.lipsync_url,
                           lipsync_timeout_ms=a.lipsync_timeout_ms, lipsync_fallback=a.lipsync_fallback)


def build_actions(settings: Settings, profile: PersonaProfile | None = None) -> dict[str, ActionClip]:
    """Action clips of the profile and of the avatar folder (clips that travel with the avatar)."""
    st = settings.stream
    wanted: list[tuple[str, dict[str, Any]]] = [
        (f"avatar.actions[{i}].file", a.model_dump() | {"file": str(settings.resolve(a.file))})
        for i, a in enumerate(settings.avatar.actions)]
    image = avatar_path(settings, profile)
    if image and Path(image).is_dir():
        from avatars.folder import read_folder

        wanted += [(f"{image}/avatar.toml actions", a) for a in read_folder(Path(image)).actions]
    clips = {}
    for key, a in wanted:
        try:
            clips[a["name"]] = load_clip(a["name"], a["file"], st.width, st.height, st.fps, st.sample_rate,
                                         a.get("on", ""), a.get("volume", 1.0))
        except AvatarError as e:
            raise ConfigError(f"{settings.source_file}: {key}: {e}") from None
    return clips


def build_moderator(settings: Settings) -> Moderator:
    m = settings.moderation
    return Moderator(ModerationRules(
        blocked_users=m.blocked_users, blocked_words=m.blocked_words, blocked_patterns=m.blocked_patterns,
        pinyin=m.pinyin, max_chars=m.max_chars, repeat_window_s=m.repeat_window_s,
        flood_messages=m.flood_messages, flood_window_s=m.flood_window_s, drop_links=m.drop_links,
        drop_emote_only=m.drop_emote_only, approve_new_viewers=m.approve_new_viewers))


def build_idle(settings: Settings, catalogue: Any, profile: PersonaProfile | None = None) -> IdleScheduler:
    """Idle content: the persona's greeting first, then timed announcements and the product's script."""
    announcements = []
    for i, a in enumerate(settings.announcement):
        until = None
        if a.until:
            try:
                until = dt.datetime.fromisoformat(a.until)
            except ValueError:
                raise ConfigError(f"{settings.source_file}: announcement[{i}].until: not an ISO time "
                                  f"({a.until!r})") from None
            if until.tzinfo is None:
                until = until.astimezone()
        announcements.append(Announcement(a.text, a.every_s, until))
    idle = IdleScheduler(catalogue, settings.persona.name, announcements)
    if profile is not None and profile.greeting:
        idle.greet(profile.greeting)
    return idle


FILLERS = {
    "en": ["Good question, one moment.", "Let me check that for you.", "Ooh, let me think about that."],
    "zh": ["好问题，我看一下哈。", "稍等，我确认一下。", "这个问题问得好，我想想。"],
}


def build_fillers(settings: Settings, profile: PersonaProfile | None = None) -> list[str]:
    """What the host says while a model is slow to answer, in the persona's (or the stream's) language."""
    language = (profile.language if profile else "") or settings.stream.language
    return FILLERS.get(language.split("-")[0].lower(), FILLERS["en"])


def build_state(settings: Settings) -> StateStore:
    d = settings.director
    try:
        return StateStore(Path(d.state_db).expanduser(), keep_days=d.keep_days, reset_corrupt=d.reset_corrupt_state)
    except StateError as e:
        raise ConfigError(f"{settings.source_file}: director.state_db: {e}") from None


def build_sources(settings: Settings, token: str | None = None) -> list[ChatSource]:
    """``token``: the control token; the local websocket requires it for paid kinds and moderator claims."""
    sources: list[ChatSource] = []
    for s in settings.chat:
        if isinstance(s, ReplaySource):
            from chat_sources.replay import ReplayChatSource

            sources.append(ReplayChatSource(settings.resolve(s.path), s.speed, s.loop, s.room))
        elif isinstance(s, WebsocketSource):
            from chat_sources.websocket import WebsocketChatSource

            sources.append(WebsocketChatSource(s.host, s.port, s.room, token=token, allowed_origins=s.allowed_origins,
                                               allow_remote=s.allow_remote))
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
    raise ValueError(f"unknown platform {platform!r}; known: bilibili, douyin, twitch")


def build_sinks(settings: Settings) -> list[Sink]:
    from streamer.sinks.camera import VirtualCameraSink
    from streamer.sinks.microphone import VirtualMicrophoneSink
    from streamer.sinks.recording import RecordingSink

    st, out = settings.stream, settings.outputs
    sinks: list[Sink] = []
    if out.camera.enabled != "off":
        sinks.append(VirtualCameraSink(st.width, st.height, st.fps, out.camera.device, out.camera.backend))
    if out.microphone.enabled:
        sinks.append(VirtualMicrophoneSink(out.microphone.sink, st.sample_rate, out.microphone.target_latency_ms))
    if out.recording.enabled:
        r = out.recording
        sinks.append(RecordingSink(r.dir, st.width, st.height, st.fps, st.sample_rate, r.segment_minutes,
                                   r.max_total_mb, r.crf))
    from streamer.sinks.outputs import output_sinks

    return sinks + output_sinks(settings)  # stage page, preview, RTMP, sound device
