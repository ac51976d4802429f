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
    from streamer.sinks.outputs import output_sinks  # issue 11: rtmp, stage, audio device, preview

    sinks += output_sinks(settings)
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
            a.wav2lip_checkpoint and str(s.resolve(a.wav2lip_checkpoint)), a.device, a.precision, a.batch, a.backend)
        self.workers = [SinkWorker(sink) for sink in build_sinks(s, self.extra_sinks)]
        self.clock = OutputClock(s.stream.fps, s.stream.sample_rate, renderer, self.workers, [draw_chat, draw_subtitle],
                                 on_playback=self._on_playback)
        self.speaker = Speaker(self.tts, renderer, self.clock)
        self._install_operator_surfaces(avatar)  # issue 11
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
        self._operator_event(event)  # issue 11: gift/paid banner
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

    # --- operator surfaces (issue 11) ---
    # Small, separate capabilities the control API, the panel, hotkeys and OBS need. Each is a command
    # (run on the event loop) or a read-only snapshot; none hands out a runtime object to a client.

    def _install_operator_surfaces(self, avatar: Any) -> None:
        """The overlay scene (product card, banners, toggles) that the clock draws, from the profile."""
        from overlays.scene import OVERLAYS, OverlayScene, SceneOverlay

        assert self.clock is not None
        o = self.settings.overlays
        self._card: dict[str, float | None] = {"original_price": None, "sale_ends_at": None}
        self._banners: collections.deque[Any] = collections.deque(maxlen=32)
        self.muted = False
        scene = OverlayScene(enabled=frozenset(n for n in OVERLAYS if getattr(o, n)), banner_seconds=o.banner_seconds,
                             face_box=tuple(avatar.hints.face_box), language=self.settings.stream.language)
        self.overlay = SceneOverlay(scene)
        self.clock.overlays = [self.overlay]
        self._refresh_scene()

    def _refresh_scene(self) -> None:
        """Publish a new overlay scene (a frozen snapshot: the clock thread reads the reference)."""
        from overlays.scene import ProductView

        if self.catalogue is None or not hasattr(self, "overlay"):
            return
        p, o = self.catalogue.product, self.settings.overlays
        product = ProductView(p.name, p.price, self._card["original_price"], p.stock,
                              self._card["sale_ends_at"], o.currency)
        self.overlay.scene = self.overlay.scene.with_(product=product, banners=tuple(self._banners))

    def _operator_event(self, event: ChatEvent) -> None:
        """A paid event (gift, super chat, membership) queues a banner: who, what, how much."""
        from overlays.banner import prune
        from overlays.scene import Banner

        if not event.kind.is_paid or not hasattr(self, "overlay"):
            return
        what = event.gift_name or event.text or event.kind.value.replace("_", " ")
        if event.count and event.count > 1 and event.gift_name:
            what = f"{event.gift_name} x{event.count}"
        amount = f"{event.amount.value:g} {event.amount.unit}" if event.amount else ""
        now = time.time()
        kept = prune(self._banners, self.settings.overlays.banner_seconds, now)  # drop what has been shown
        self._banners = collections.deque(kept[-31:], maxlen=32)
        self._banners.append((now, Banner(event.user.name, what[:40], amount)))
        self._refresh_scene()

    def set_overlay(self, name: str, enabled: bool) -> list[str]:
        on = set(self.overlay.scene.enabled)
        (on.add if enabled else on.discard)(name)
        self.overlay.scene = self.overlay.scene.with_(enabled=frozenset(on))
        return sorted(on)

    def set_product_card(self, original_price: float | None = None, sale_ends_in_s: float | None = None) -> None:
        """Live values only the card shows: the crossed-out original price and a flash-sale countdown
        (0 removes either)."""
        if original_price is not None:
            self._card["original_price"] = original_price or None
        if sale_ends_in_s is not None:
            self._card["sale_ends_at"] = time.time() + sale_ends_in_s if sale_ends_in_s else None
        self._refresh_scene()

    def clear_queue(self, include_paid: bool = False) -> int:
        """Drop every queued viewer message (paid ones only when asked: money was spent on them)."""
        assert self.director is not None
        paid: list[str] = []

        def match(e: ChatEvent) -> bool:
            if e.kind.is_paid and not include_paid:
                return False
            if e.kind.is_paid:
                paid.append(e.id)
            return True

        removed = self.director.remove(match)
        if paid and self.store is not None:
            self.store.mark_answered(paid)  # the operator dropped them: not to be restored after a restart
        return removed

    def set_muted(self, muted: bool) -> None:
        """Silence the microphone outputs (virtual microphone, sound device); the stream goes on."""
        self.muted = muted
        for w in self.workers:
            gate = getattr(w.sink, "muted", None)
            if gate is not None:
                (gate.set if muted else gate.clear)()

    def current_authors(self) -> list[dict[str, str]]:
        """The viewers whose message the line being spoken answers."""
        current = getattr(self.director, "_current", None)
        events = current.turn.events if current is not None else []
        return [{"id": e.user.id, "name": e.user.name, "platform": e.platform} for e in events]

    async def ban_current(self) -> dict[str, Any]:
        """Ban the author(s) of the line being spoken and cut the line."""
        assert self.director is not None
        authors = self.current_authors()
        removed = sum(self.director.ban(a["id"], a["platform"]) for a in authors)
        tick = await self.interrupt() if authors else None
        return {"banned": authors, "removed": removed, "faded_at_tick": tick}

    def reopen_sink(self, name: str) -> bool:
        """Ask one sink to reopen its device (the others are untouched). False for an unknown name."""
        for w in self.workers:
            reopener = getattr(w.sink, "reopener", None)
            if w.sink.name == name and reopener is not None:
                reopener.request()
                return True
        return False

    def stage_hub(self) -> Any:
        """The stage page's WebRTC viewers (None when [outputs.stage] is off)."""
        for w in self.workers:
            if w.sink.name == "stage" and w.failed is None:
                return getattr(w.sink, "hub", None)
        return None

    def preview_jpeg(self) -> bytes | None:
        for w in self.workers:
            if w.sink.name == "preview":
                return w.sink.jpeg()  # type: ignore[attr-defined, no-any-return]
        return None

    def healthy(self) -> bool:
        """The clock is ticking (its thread alive and a tick emitted in the last two seconds)."""
        clock = self.clock
        thread = getattr(clock, "_thread", None)
        if clock is None or thread is None or not thread.is_alive():
            return False
        times = clock._emit_times
        return bool(times) and time.monotonic() - times[-1] < 2.0

    def operator_status(self) -> dict[str, Any]:
        """Everything the panel shows, in one snapshot (the status stream sends it when it changes)."""
        assert self.director is not None
        queue = self.director.queue_view()
        sources = [{"name": src.describe(), "connected": src.connected.is_set() if hasattr(src, "connected") else None,
                    "error": getattr(src, "last_error", "")} for src in self.sources]
        moderator = self.director.moderator
        return {**self.status(), "queue_items": queue, "muted": self.muted, "authors": self.current_authors(),
                "approval": bool(moderator is not None and moderator.approval),
                "overlays": sorted(self.overlay.scene.enabled), "sources": sources,
                "paid_pending": sum(1 for item in queue if item.get("priority") == 1),
                "product": self.update_product(), "personas": sorted(self.cast.profiles) if self.cast else [],
                "products": [p.id for p in self.catalogue.products] if self.catalogue else [],
                "actions": sorted(self.actions), "stage": self.stage_hub() is not None}
