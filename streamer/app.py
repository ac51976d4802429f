"""The app: wires every part from the config, owns every task and thread, and stops them all.

Network and control live on one asyncio loop; TTS and rendering run in worker threads; the output
clock and each sink run in their own threads. Nothing starts in a constructor: ``start()`` starts,
``stop()`` cancels and joins everything (Ctrl-C stops within a second).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import time
from typing import Any

from avatars.actions import ActionClip, load_clip
from avatars.portrait import load_avatar
from avatars.procedural import ProceduralRenderer
from avatars.renderers import create_renderer
from chat_sources.base import ChatSource
from chat_sources.replay import ReplayChatSource
from chat_sources.websocket import WebsocketChatSource
from overlays import draw_chat, draw_subtitle
from streamer.clock import OutputClock, PlaybackEvent
from streamer.config import ReplaySource, Settings, WebsocketSource
from streamer.director import Director
from streamer.events import ChatEvent
from streamer.moderation import ModerationRules, Moderator
from streamer.persona import load_catalogue
from streamer.persona.catalogue import Catalogue
from streamer.persona.factory import Cast, build_cast, build_idle, build_output_filter, state_path
from streamer.persona.memory import Memory
from streamer.sinks.base import Sink, SinkWorker
from streamer.sinks.camera import VirtualCameraSink
from streamer.sinks.microphone import VirtualMicrophoneSink
from streamer.sinks.recording import RecordingSink
from streamer.speaker import Speaker
from streamer.store import Store
from streamer.voice.base import TTS, create_tts

log = logging.getLogger(__name__)


def build_tts(settings: Settings, engine: str | None = None, espeak_voice: str | None = None) -> TTS:
    v = settings.voice
    return create_tts(engine or v.engine, settings.stream.sample_rate,
                      model=v.piper_model and str(settings.resolve(v.piper_model)),
                      voice=espeak_voice or v.espeak_voice, speed=v.speed, volume=v.volume)


def build_sources(settings: Settings) -> list[ChatSource]:
    sources: list[ChatSource] = []
    for s in settings.chat:
        if isinstance(s, ReplaySource):
            sources.append(ReplayChatSource(settings.resolve(s.path), s.speed, s.loop, s.room))
        elif isinstance(s, WebsocketSource):
            sources.append(WebsocketChatSource(s.host, s.port, s.room))
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


def build_sinks(settings: Settings, extra: list[Sink] | None = None) -> list[Sink]:
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
    return sinks + (extra or [])


def persona_topic(persona: Any) -> Any:
    """The scripted persona's FAQ topic finder (used to merge repeated questions)."""
    scripted = getattr(persona, "fallback", persona)
    return getattr(scripted, "topic", None)


class App:
    def __init__(self, settings: Settings, extra_sinks: list[Sink] | None = None) -> None:
        self.settings = settings
        self.extra_sinks = extra_sinks or []
        self.tts: TTS | None = None
        self.clock: OutputClock | None = None
        self.director: Director | None = None
        self.speaker: Speaker | None = None
        self.catalogue: Catalogue | None = None
        self.cast: Cast | None = None
        self.store: Store | None = None
        self.actions: dict[str, ActionClip] = {}
        self._action_busy_until: dict[str, float] = {}
        self.sources: list[ChatSource] = []
        self.workers: list[SinkWorker] = []
        self.playback_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.started_at = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        catalogue = self.catalogue = load_catalogue(s.resolve(s.persona.catalogue))
        memory = Memory()
        self.cast = build_cast(s, catalogue, memory)
        profile = self.cast.profiles[self.cast.active]
        self.tts = await asyncio.to_thread(build_tts, s, profile.voice or None, profile.espeak_voice or None)
        log.info("voice ready", extra={"engine": self.tts.describe()})
        image = profile.avatar or s.avatar.image
        avatar = await asyncio.to_thread(load_avatar, image and str(s.resolve(image)),
                                         s.stream.width, s.stream.height, s.avatar.mouth_x, s.avatar.mouth_y,
                                         s.avatar.mouth_width, s.avatar.green_screen,
                                         s.avatar.background and str(s.resolve(s.avatar.background)), s.stream.fps)
        a = s.avatar
        renderer = await asyncio.to_thread(
            create_renderer, a.renderer, avatar, s.stream.fps,
            a.wav2lip_checkpoint and str(s.resolve(a.wav2lip_checkpoint)), a.device, a.precision, a.batch, a.backend,
            lipsync_url=a.lipsync_url, lipsync_timeout_ms=a.lipsync_timeout_ms, lipsync_fallback=a.lipsync_fallback)
        self.workers = [SinkWorker(sink) for sink in build_sinks(s, self.extra_sinks)]
        self.clock = OutputClock(s.stream.fps, s.stream.sample_rate, renderer, self.workers, [draw_chat, draw_subtitle],
                                 on_playback=self._on_playback)
        self.speaker = Speaker(self.tts, renderer, self.clock)
        actions = [a.model_dump() | {"file": str(s.resolve(a.file))} for a in s.avatar.actions]
        if image and s.resolve(image).is_dir():  # clips that travel with an avatar folder
            from avatars.folder import read_folder

            actions += read_folder(s.resolve(image)).actions
        self.actions = {a["name"]: await asyncio.to_thread(load_clip, a["name"], a["file"], s.stream.width,
                                                           s.stream.height, s.stream.fps, s.stream.sample_rate,
                                                           a.get("on", ""), a.get("volume", 1.0)) for a in actions}
        m = s.moderation
        moderator = Moderator(ModerationRules(
            m.blocked_users, m.blocked_words, m.blocked_patterns, m.pinyin, m.max_chars, m.repeat_window_s,
            m.flood_messages, m.flood_window_s, m.drop_links, m.drop_emote_only, m.approve_new_viewers))
        self.store = Store(state_path(s))
        persona = self.cast.build()
        self.director = Director(persona, self.speaker, s.director, s.persona.idle_after_s, idle=build_idle(s, catalogue),
                                 moderator=moderator, output_filter=build_output_filter(s, self.cast),
                                 store=self.store, memory=memory, topic_fn=persona_topic(persona))
        self.sources = build_sources(s)
        await asyncio.to_thread(self.clock.start)
        self.started_at = time.monotonic()
        self._tasks.append(asyncio.create_task(self.director.run(), name="director"))
        for src in self.sources:
            self._tasks.append(asyncio.create_task(self._run_source(src), name=f"source-{src.name}"))
        await self._sources_listening()
        # Everything built so far lives for the whole stream: move it out of the cyclic GC's reach, so
        # a full collection walks only what the stream allocates (it stops every thread, the clock too).
        gc.collect()
        gc.freeze()
        log.info("streamer running", extra={"fps": s.stream.fps, "size": f"{s.stream.width}x{s.stream.height}",
                                            "sinks": ",".join(w.sink.name for w in self.workers if not w.failed)})

    async def _sources_listening(self, timeout: float = 5.0) -> None:
        """Wait until servers among the sources (the local websocket) accept connections."""
        waits = [asyncio.create_task(src.ready.wait()) for src in self.sources if isinstance(src, WebsocketChatSource)]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for w in pending:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _run_source(self, src: ChatSource) -> None:
        delay = 1.0
        while True:
            try:
                await src.run(self.inject)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.error("chat source failed; restarting", extra={"source": src.describe(), "error": str(e),
                                                                   "retry_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    def play_action(self, name: str) -> int:
        """Play an action clip now (between sentences, like a reply). KeyError for an unknown name."""
        assert self.speaker is not None
        clip = self.actions[name]
        self._action_busy_until[name] = time.monotonic() + clip.frames / self.settings.stream.fps
        return self.speaker.play_clip(clip)

    def inject(self, event: ChatEvent) -> None:
        assert self.director is not None and self.clock is not None
        for clip in self.actions.values():
            if clip.on == event.kind.value and time.monotonic() >= self._action_busy_until.get(clip.name, 0.0):
                self.play_action(clip.name)
        if event.text:
            self.clock.overlay_state.chat.append(f"{event.user.name}: {event.text}"[:80])
        self.director.submit(event)

    def _on_playback(self, ev: PlaybackEvent) -> None:  # clock thread
        if self._loop is not None and self.director is not None:
            fraction = ev.played_frames / max(1, ev.segment.total_frames)
            self._loop.call_soon_threadsafe(self.director.on_playback, ev.segment.turn, ev.segment.text, ev.kind,
                                            ev.completed, fraction)
        entry = {"kind": ev.kind, "utterance": ev.segment.utterance.id, "answers": ev.segment.utterance.answers,
                 "source": ev.segment.utterance.source, "text": ev.segment.text, "tick": ev.tick,
                 "completed": ev.completed, "played_frames": ev.played_frames, "turn": ev.segment.turn}
        self.playback_log.append(entry)
        if ev.kind == "start":
            log.info("speech started", extra={"utterance": entry["utterance"], "answers": entry["answers"],
                                              "tick": ev.tick})

    # ------------------------------------------------------------------ commands
    async def interrupt(self) -> int:
        assert self.director is not None
        return await self.director.interrupt()

    async def pause(self) -> int:
        assert self.director is not None
        return await self.director.pause()

    def resume(self) -> None:
        assert self.director is not None
        self.director.resume()

    def say_now(self, text: str) -> None:
        assert self.director is not None
        self.director.say_now(text)

    # ------------------------------------------------------------------ live settings (control panel)
    async def set_persona(self, name: str) -> str:
        """Switch persona; voice and avatar follow its profile. Takes effect at the next utterance."""
        assert self.cast is not None and self.director is not None and self.speaker is not None
        persona = self.cast.build(name)
        profile = self.cast.profiles[name]
        s = self.settings
        tts = await asyncio.to_thread(build_tts, s, profile.voice or None, profile.espeak_voice or None)
        old, self.tts, self.speaker.tts = self.tts, tts, tts
        if old is not None:
            old.close()
        if profile.avatar and self.clock is not None:
            avatar = await asyncio.to_thread(load_avatar, str(s.resolve(profile.avatar)), s.stream.width, s.stream.height)
            renderer = ProceduralRenderer(avatar, s.stream.fps)
            self.speaker.renderer = renderer
            self.clock.renderer = renderer
        self.cast.active = name
        previous = self.director.persona
        self.director.set_persona(persona)
        aclose = getattr(previous, "aclose", None)
        if aclose is not None:
            await aclose()
        log.info("persona switched", extra={"persona": name, "voice": tts.describe()})
        return name

    def update_product(self, product_id: str | None = None, price: float | None = None,
                       stock: int | None = None) -> dict[str, Any]:
        assert self.catalogue is not None
        if product_id:
            self.catalogue.select(product_id)
        p = self.catalogue.product
        if price is not None:
            p.price = price
        if stock is not None:
            p.stock = stock
        return {"id": p.id, "name": p.name, "price": p.price, "stock": p.stock}

    def status(self) -> dict[str, Any]:
        assert self.clock is not None and self.director is not None
        seg = self.clock.speaking
        return {
            "speaking": seg.text if seg else None,
            "answering": seg.utterance.answers if seg else None,
            "queue": len(self.director),
            "paused": self.director.paused,
            "persona": self.cast.active if self.cast else None,
            "fps": round(self.clock.measured_fps(), 2),
            "ticks": self.clock.ticks,
            "av_offset_ms": self._av_offset_ms(),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "renderer": getattr(self.clock.renderer, "status", dict)(),  # e.g. lip-sync frames covered locally
            "sinks": {w.sink.name: {"ok": w.failed is None, "error": w.failed, "written": w.written,
                                    "dropped": w.dropped, **w.sink.status()} for w in self.workers},
        }

    def _av_offset_ms(self) -> float:
        """Audio behind video at the outputs: the clock emits both in the same tick, so what remains is
        the virtual microphone's device buffer (0 without one)."""
        for w in self.workers:
            if isinstance(w.sink, VirtualMicrophoneSink) and w.failed is None:
                return round(w.sink.latency_s * 1000.0, 1)
        return 0.0

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.speaker is not None:
            await self.speaker.aclose()
        if self.clock is not None:
            await asyncio.to_thread(self.clock.stop, 0.8)
        if self.tts is not None:
            self.tts.close()
        aclose = getattr(self.director.persona if self.director else None, "aclose", None)
        if aclose is not None:
            await aclose()
        if self.store is not None:
            self.store.close()
        log.info("streamer stopped")
