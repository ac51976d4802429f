"""The app: one room. It builds every stage from the settings (streamer.build), connects them in the
design's one-way flow and owns their lifecycle:

    chat sources --ChatEvent--> director --Reply--> speaker --Segment--> clock --Tick--> sinks

Control flows back only as commands (interrupt, pause, say, ban, switch persona or product); the
clock's reports come back on the segments themselves (streamer.speech), which the speaker turns into
playback events on the event loop. ``start()`` starts the stages in order (sinks and clock first, so
the stream is live before the first chat event), ``stop()`` stops them in reverse; nothing starts in
a constructor. Process-wide tuning (GC, GIL switch interval) is the entry point's job (streamer.cli).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from avatars.actions import ActionClip
from chat_sources.base import ChatSource
from chat_sources.websocket import WebsocketChatSource
from overlays import draw_chat, draw_subtitle
from streamer import build
from streamer.clock import OutputClock, OverlayState
from streamer.config import Settings
from streamer.director import Director
from streamer.director.state import StateStore
from streamer.events import ChatEvent
from streamer.persona import load_catalogue
from streamer.persona.catalogue import Catalogue
from streamer.persona.factory import Cast, build_cast, build_output_filter
from streamer.persona.memory import Memory
from streamer.sinks.base import Sink, SinkWorker
from streamer.sinks.microphone import VirtualMicrophoneSink
from streamer.speaker import PlaybackEvent, Speaker
from streamer.voice.base import TTS

if TYPE_CHECKING:
    from streamer.persona.profile import PersonaProfile
    from streamer.voice.mic import OperatorMic, OperatorSpeech

log = logging.getLogger(__name__)


class App:
    def __init__(self, settings: Settings, *, extra_sinks: list[Sink] | None = None,
                 control_token: str | None = None) -> None:
        self.settings = settings
        self.extra_sinks = extra_sinks or []
        self.control_token = control_token
        """The control API's token: the local websocket requires it for paid kinds and moderator claims."""
        self.catalogue: Catalogue | None = None
        self.cast: Cast | None = None
        self.tts: TTS | None = None
        self.clock: OutputClock | None = None
        self.speaker: Speaker | None = None
        self.director: Director | None = None
        self.state: StateStore | None = None
        self.actions: dict[str, ActionClip] = {}
        self.sources: list[ChatSource] = []
        self.workers: list[SinkWorker] = []
        self.playback_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.started_at = 0.0
        self._action_busy_until: dict[str, float] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._commands: set[asyncio.Future[Any]] = set()
        self.mic: OperatorMic | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        s = self.settings
        self.catalogue = load_catalogue(s.resolve(s.persona.catalogue))
        memory = Memory()
        self.cast = build_cast(s, self.catalogue, memory)
        profile = self.cast.profiles[self.cast.active]
        self.tts = await asyncio.to_thread(build.build_tts, s, profile)
        log.info("voice ready", extra={"engine": self.tts.describe()})
        renderer = await asyncio.to_thread(lambda: build.build_renderer(s, build.build_avatar(s, profile)))
        self.actions = await asyncio.to_thread(build.build_actions, s, profile)
        self.state = build.build_state(s)
        self.workers = [SinkWorker(sink) for sink in [*build.build_sinks(s), *self.extra_sinks]]
        self.clock = OutputClock(s.stream.fps, s.stream.sample_rate, renderer, self.workers, [draw_chat, draw_subtitle])
        self.speaker = Speaker(tts=self.tts, renderer=renderer, clock=self.clock)
        self.speaker.on_playback.append(self._log_playback)
        persona = self.cast.build()
        self.director = Director(
            persona=persona, speaker=self.speaker, settings=s.director, idle_after_s=s.persona.idle_after_s,
            idle=build.build_idle(s, self.catalogue, profile), moderator=build.build_moderator(s),
            output_filter=build_output_filter(s, self.cast), state=self.state, memory=memory,
            fillers=build.build_fillers(s, profile))
        self.director.on_accept.append(self._accepted)
        self._install_operator_surfaces(renderer)
        self.director.on_accept.append(self._operator_event)  # banners come from accepted paid events only
        self.sources = build.build_sources(s, token=self.control_token)
        self.mic = await asyncio.to_thread(self._build_mic, profile) if s.voice.mic.enabled else None
        if not self.sources:
            log.warning("no chat source configured: the host will only talk about the products (add a [[chat]] "
                        "section, see config/default.toml)")
        await asyncio.to_thread(self.clock.start)
        self.started_at = time.monotonic()
        await self.director.start()
        self._tasks = [asyncio.create_task(src.run(self.director.push), name=f"source-{src.name}")
                       for src in self.sources]
        if self.mic is not None:
            self._tasks.append(asyncio.create_task(self.mic.run(self._operator_speech), name="operator-mic"))
        await self._sources_listening()
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

    async def stop(self) -> None:
        for t in [*self._tasks, *self._commands]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._commands, return_exceptions=True)
        self._tasks.clear()
        if self.director is not None:
            await self.director.stop()
        if self.speaker is not None:
            await self.speaker.aclose()
        if self.clock is not None:
            await asyncio.to_thread(self.clock.stop, 0.8)
        if self.tts is not None:
            self.tts.close()
        if self.director is not None:
            await self.director.persona.aclose()
        if self.state is not None:
            self.state.close()
        log.info("streamer stopped")

    # ------------------------------------------------------------------ feeds between stages
    def _accepted(self, event: ChatEvent) -> None:
        """The director accepted a message: it may be shown (ticker) and may trigger an action clip."""
        assert self.clock is not None
        if event.text:
            line = f"{event.user.name}: {event.text}"[:80]
            self.clock.update_overlay(lambda state: state.chat.append(line))
        for clip in self.actions.values():
            if clip.on == event.kind.value and time.monotonic() >= self._action_busy_until.get(clip.name, 0.0):
                self.play_action(clip.name)

    def _build_mic(self, profile: PersonaProfile) -> OperatorMic:
        from streamer.voice.factory import voice_language
        from streamer.voice.mic import build_operator_mic

        return build_operator_mic(self.settings, voice_language(self.settings, profile),
                                  is_host_speaking=lambda: self.speaker is not None and self.speaker.now_playing is not None)

    def _operator_speech(self, ev: OperatorSpeech) -> None:
        """What the operator said into the microphone: interrupt the host, say it, or answer it."""
        if ev.kind == "barge_in":
            task = asyncio.ensure_future(self.interrupt())
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)
        elif ev.kind == "operator_line":
            self.say_now(ev.text)
        else:
            self.inject(ev.to_chat_event())

    def _log_playback(self, ev: PlaybackEvent) -> None:
        u = ev.utterance
        self.playback_log.append({"kind": ev.kind, "utterance": u.id, "turn": u.turn, "answers": u.answers,
                                  "source": u.source, "text": u.text, "tick": ev.tick, "completed": ev.completed,
                                  "played_frames": ev.played_frames})
        if ev.kind == "start":
            log.info("speech started", extra={"utterance": u.id, "turn": u.turn, "answers": u.answers, "tick": ev.tick})

    # ------------------------------------------------------------------ commands
    def inject(self, event: ChatEvent) -> None:
        """A chat event from the operator's side (the control API's /api/chat)."""
        assert self.director is not None
        self.director.push(event)

    def play_action(self, name: str) -> str:
        """Play an action clip now (between sentences, like a reply). KeyError for an unknown name."""
        assert self.speaker is not None
        clip = self.actions[name]
        self._action_busy_until[name] = time.monotonic() + clip.frames / self.settings.stream.fps
        return self.speaker.play_clip(clip)

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

    async def set_persona(self, name: str) -> str:
        """Switch persona at the next sentence; voice, avatar and renderer are rebuilt by the same builders
        as at start (Wav2Lip, green screen, background and fps are kept)."""
        assert self.cast is not None and self.director is not None and self.speaker is not None and self.clock
        persona = self.cast.build(name)
        profile = self.cast.profiles[name]
        s = self.settings
        tts = await asyncio.to_thread(build.build_tts, s, profile)
        renderer = None
        if profile.avatar:
            renderer = await asyncio.to_thread(lambda: build.build_renderer(s, build.build_avatar(s, profile)))
            self.clock.set_renderer(renderer)
        old, self.tts = self.tts, tts
        self.speaker.use(tts=tts, renderer=renderer)
        if old is not None:  # a sentence may still be in its synthesis: close it once that is surely over
            asyncio.get_running_loop().call_later(30.0, old.close)
        self.cast.active = name
        previous = self.director.persona
        self.director.set_persona(persona)
        self.director.fillers = build.build_fillers(s, profile)
        if self.director.idle is not None and profile.greeting:
            self.director.idle.greet(profile.greeting)  # the new host says hello at the next quiet moment
        await previous.aclose()
        log.info("persona switched", extra={"persona": name, "voice": tts.describe()})
        return name

    def update_product(self, product_id: str | None = None, price: float | None = None,
                       stock: int | None = None) -> dict[str, Any]:
        """Switch product or change its live values; the catalogue gets a new product record (readers on the
        event loop see the new values at their next line; the overlays get a copy)."""
        assert self.catalogue is not None and self.clock is not None
        if product_id:
            self.catalogue.select(product_id)
        if price is not None or stock is not None:
            i, old = self.catalogue.current, self.catalogue.product
            self.catalogue.products[i] = dataclasses.replace(old, price=old.price if price is None else price,
                                                             stock=old.stock if stock is None else stock)
        p = self.catalogue.product
        view = {"id": p.id, "name": p.name, "price": p.price, "stock": p.stock}
        self.clock.update_overlay(lambda state: _set(state, "product", dict(view)))
        if product_id:
            self._refresh_scene()  # a new product on the card
        return view

    # ------------------------------------------------------------------ what the operator sees
    def status(self) -> dict[str, Any]:
        assert self.clock is not None and self.director is not None and self.speaker is not None
        now = self.speaker.now_playing
        stats = self.director.stats()
        return {
            "speaking": now.text if now else None,
            "answering": now.answers if now else None,
            "queue": stats["queued"],
            "held": stats["held"],
            "paid_pending": stats["paid_pending"],
            "paid_failed": stats["paid_failed"],
            "paused": self.director.paused,
            "persona": self.cast.active if self.cast else None,
            "voice": self.tts.describe() if self.tts else None,
            "voice_engine": self.tts.speaking if self.tts else None,  # the chain's engine that spoke last
            "operator_mic": None if self.mic is None else {"mode": self.mic.mode, "talking": self.mic.talking},
            "fps": round(self.clock.measured_fps(), 2),
            "ticks": self.clock.ticks,
            "mic_latency_ms": self._mic_latency_ms(),
            "lip_sync": {"renderer": self.speaker.renderer.name, "late_frames": self.speaker.late_frames,
                         "render_failures": self.speaker.render_failures},
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "director": stats,
            "guard": self.director.output_filter.status(),
            "sources": [{"source": src.describe(), "state": src.state.value, "last_error": src.last_error}
                        for src in self.sources],
            "renderer": self.clock.renderer.status(),
            "errors": {"llm": self.director.persona.error_counts(),
                       "tts": self.tts.error_counts() if self.tts else {}},  # e.g. lip-sync frames covered locally (rooms)
            "sinks": {w.sink.name: {"ok": w.failed is None, "error": w.failed, "written": w.written,
                                    "dropped": w.dropped, **w.sink.status()} for w in self.workers},
        }

    def _mic_latency_ms(self) -> float:
        """Audio behind video at the virtual microphone: its device buffer (0 without one). The clock emits
        picture and sound of a tick together, so this is what separates them at the outputs we control."""
        for w in self.workers:
            if isinstance(w.sink, VirtualMicrophoneSink) and w.failed is None:
                return round(w.sink.latency_s * 1000.0, 1)
        return 0.0


    # --- operator surfaces (issue 11) ---
    # Small capabilities the control API, the panel, hotkeys and OBS need. Each is a command (run on the
    # event loop; what changes the picture goes to the clock's inbox) or a read-only snapshot; none hands a
    # runtime object to a client.

    def _install_operator_surfaces(self, renderer: Any) -> None:
        """The overlay scene (subtitles, chat, product card, banners, toggles) the clock draws, from the profile."""
        from overlays.scene import OVERLAYS, OverlayScene, SceneOverlay

        assert self.clock is not None
        o = self.settings.overlays
        self._card: dict[str, float | None] = {"original_price": None, "sale_ends_at": None}
        self._banners: collections.deque[Any] = collections.deque(maxlen=32)
        self.muted = False
        scene = OverlayScene(enabled=frozenset(n for n in OVERLAYS if getattr(o, n)), banner_seconds=o.banner_seconds,
                             face_box=tuple(renderer.avatar.hints.face_box), language=self.settings.stream.language)
        self.overlay = SceneOverlay(scene)
        self.clock.overlays = [self.overlay]  # before the clock starts: set once, never swapped under it
        self._refresh_scene()

    def _publish_scene(self, scene: Any) -> None:
        """A new frozen scene for the clock (through its inbox) and for readers on this side."""
        assert self.clock is not None
        self.overlay.scene = scene
        self.clock.update_overlay(lambda state: _set(state, "scene", scene))

    def _refresh_scene(self) -> None:
        from overlays.scene import ProductView

        if self.catalogue is None:
            return
        p, o = self.catalogue.product, self.settings.overlays
        product = ProductView(p.name, p.price, self._card["original_price"], p.stock,
                              self._card["sale_ends_at"], o.currency)
        self._publish_scene(self.overlay.scene.with_(product=product, banners=tuple(self._banners)))

    def _operator_event(self, event: ChatEvent) -> None:
        """An accepted paid event (gift, super chat, membership) queues a banner: who, what, how much."""
        from overlays.banner import prune
        from overlays.scene import Banner

        if not event.paid:
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
        self._publish_scene(self.overlay.scene.with_(enabled=frozenset(on)))
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
        """Drop every queued viewer message (paid ones only when asked: money was spent on them; those are
        closed in the ledger as skipped by the operator)."""
        assert self.director is not None
        if include_paid:
            return self.director.remove(lambda e: True, "queue cleared by the operator")
        return self.director.clear()

    def talk(self, down: bool) -> None:
        """Push-to-talk: ``down`` starts recording the operator (a barge-in if the host is speaking); up ends
        it, and what was said is transcribed into an operator line (or a question, in conversation mode).
        LookupError without an operator microphone; ValueError when it listens by itself (open_mic)."""
        if self.mic is None:
            raise LookupError("no operator microphone: set [voice.mic] enabled = true in the profile")
        if self.mic.mode != "push_to_talk":
            raise ValueError("the operator microphone is in open_mic mode: it listens by itself")
        if down:
            self.mic.press()
        else:
            self.mic.release()

    def set_muted(self, muted: bool) -> None:
        """Silence the microphone outputs (virtual microphone, sound device); the stream goes on."""
        self.muted = muted
        for w in self.workers:
            w.sink.mute(muted)

    def current_authors(self) -> list[dict[str, str]]:
        """The viewers whose message the line being spoken answers."""
        assert self.director is not None
        turn = self.director.now
        events = turn.events if turn is not None else []
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
        return any(w.sink.name == name and w.sink.request_reopen() for w in self.workers)

    def stage_hub(self) -> Any:
        """The stage page's WebRTC viewers (None when [outputs.stage] is off)."""
        from streamer.sinks.stage import StageSink

        for w in self.workers:
            if isinstance(w.sink, StageSink) and w.failed is None:
                return w.sink.hub
        return None

    def preview_jpeg(self) -> bytes | None:
        from streamer.sinks.preview import PreviewSink

        for w in self.workers:
            if isinstance(w.sink, PreviewSink):
                return w.sink.jpeg()
        return None

    def healthy(self) -> bool:
        """The clock is ticking (its thread alive and a tick emitted in the last two seconds)."""
        return self.clock is not None and self.clock.alive(2.0)

    def operator_status(self) -> dict[str, Any]:
        """Everything the panel shows, in one snapshot (the status stream sends it when it changes)."""
        assert self.director is not None
        moderator = self.director.moderator
        status = self.status()
        status["sources"] = [{**src, "name": src["source"]} for src in status["sources"]]
        return {**status, "queue_items": self.director.queue_view(), "muted": self.muted,
                "authors": self.current_authors(), "approval": bool(moderator is not None and moderator.approval),
                "overlays": sorted(self.overlay.scene.enabled), "product": self.update_product(),
                "personas": sorted(self.cast.profiles) if self.cast else [],
                "products": [p.id for p in self.catalogue.products] if self.catalogue else [],
                "actions": sorted(self.actions), "stage": self.stage_hub() is not None,
                "failed": self.director.failed()}


def _set(state: OverlayState, key: str, value: Any) -> None:
    state.extra[key] = value
