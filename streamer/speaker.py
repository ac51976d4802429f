"""The speaker: one reply in, voiced and rendered segments out to the clock.

For each sentence of a ``Reply`` it runs the voice (TTS, in a worker thread) and hands the audio to
one render worker (``avatars.stream``): the sentence's mouth poses render there, in order, a small
first batch for the first sentence of a reply (so it can start within a fraction of a second) and
full batches after, while the next sentence is being synthesised. The segment goes to the clock at
once; the clock starts it when its render will keep ahead of playback, and a frame that is not
rendered in time is shown with the procedural mouth (counted in ``late_frames``), so the clock never
waits for the renderer. A renderer that fails is logged once by the worker and covered the same
way. The speaker keeps at most ``lookahead_s`` of speech queued ahead of the clock, waiting on the
clock's own reports (the segments' futures), never polling.

``push(reply)`` returns once every segment of the reply has left the clock; what was heard is read
from the reply's segments (``heard_of``). Cancelling it (an interrupt) stops the chain at once: the
persona stream is closed, synthesis and rendering are abandoned; the director then tells the clock to
fade out (``interrupt``). A sentence the voice cannot say is skipped with one log line: the reply goes
on, and a reply of which nothing was heard is reported as such, so a paid message is not marked answered.

Listeners (``on_playback``) see each segment start and end on the event loop: the app's playback log,
the status stream.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from avatars.base import REST, Renderer
from avatars.stream import RenderStream, RenderWorker
from streamer.clock import OutputClock
from streamer.speech import Heard, HeardLine, Played, PoseSource, Reply, Segment, Utterance, reported
from streamer.voice.base import TTS, TTSError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlaybackEvent:
    kind: str
    """start | end"""
    utterance: Utterance
    tick: int
    completed: bool = True
    played_frames: int = 0


def heard_of(segments: list[Segment]) -> Heard:
    """What the audience heard of these segments (all of them ended)."""
    heard = Heard()
    for seg in segments:
        if not seg.started.done():
            continue
        heard.started += 1
        played: Played = seg.ended.result() if seg.ended.done() else Played(0, False, -1)
        fraction = 1.0 if played.completed else played.frames / max(1, seg.total_frames)
        if played.completed:
            words = seg.text
        elif seg.speech is not None:  # word timings from the voice: exactly the words that were heard
            words = seg.speech.heard(played.frames * seg.samples_per_frame / seg.speech.rate)
        else:
            words = seg.text[:int(len(seg.text) * fraction)]
        heard.lines.append(HeardLine(seg.text, played.completed, fraction, words))
    return heard


class Speaker:
    def __init__(self, *, tts: TTS, renderer: Renderer, clock: OutputClock, lookahead_s: float = 4.0,
                 tail_s: float = 0.3, first_batch: int = 4) -> None:
        self.tts = tts
        self.renderer = renderer
        self.clock = clock
        self.lookahead_frames = int(lookahead_s * clock.fps)
        self.tail_frames = int(tail_s * clock.fps)
        self.on_playback: list[Callable[[PlaybackEvent], None]] = []
        self.now_playing: Utterance | None = None
        self.first_batch = first_batch
        """Frames in the first render batch of a reply: what playback waits for before it can start."""
        self._ahead: collections.deque[Segment] = collections.deque()
        self._renders = RenderWorker("lip-sync")
        self._streams: set[PoseSource] = set()
        """Renders of the sentences queued and not yet played out (each holds its audio and poses)."""
        self._late_done = 0

    @property
    def late_frames(self) -> int:
        """Frames of recent sentences shown with the procedural mouth because their render was late."""
        return self._late_done + sum(s.late_frames for s in self._streams)

    @property
    def render_failures(self) -> int:
        return sum(self._renders.failures.values())

    def use(self, *, tts: TTS | None = None, renderer: Renderer | None = None) -> None:
        """Speak with another voice or renderer from the next sentence on (a persona switch)."""
        self.tts = tts or self.tts
        self.renderer = renderer or self.renderer

    # ------------------------------------------------------------------ the one input
    async def push(self, reply: Reply, segments: list[Segment] | None = None) -> list[Segment]:
        """Voice, render and queue every sentence of ``reply``; return its segments once all have left
        the clock. ``segments`` (if given) is filled as they are queued, so a caller that cancels this
        can still find out what was heard."""
        out = segments if segments is not None else []
        async with aclosing(reply.sentences) as sentences:  # a cancelled turn closes the generator chain now
            async for text in sentences:
                seg = await self._voice(Utterance(text, reply.turn, reply.answers, reply.source, reply.priority),
                                        first=not out)
                if seg is None:
                    continue
                await self._make_room()
                self._queue(seg)
                out.append(seg)
                if reply.paced:
                    await reported(seg.near_end)
        for seg in out:
            await reported(seg.ended)
        return out

    async def _voice(self, utt: Utterance, first: bool = False) -> Segment | None:
        t0 = time.perf_counter()
        try:
            speech = await self.tts.speak(utt.text)
        except TTSError as e:
            log.error("voice failed; skipping sentence", extra={"utterance": utt.id, "turn": utt.turn, "error": str(e)})
            return None
        pcm = speech.pcm
        if pcm.size == 0:
            log.warning("voice returned no audio; skipping sentence", extra={"utterance": utt.id})
            return None
        t1 = time.perf_counter()
        # the tick it should start on (an idle-video avatar renders against those loop frames), per sentence
        start = self.clock.ticks + self._frames_ahead() + self.clock.prebuffer_frames
        caps = self.renderer.capabilities
        stream = RenderStream(self.renderer, pcm, self.clock.sample_rate, start_tick=start,
                              first_batch=self.first_batch if first else (caps.batch or self.first_batch))
        self._renders.start()
        self._renders.submit(stream)
        stream.first_batch_done.add_done_callback(lambda _f: log.info(
            "first poses rendered", extra={"utterance": utt.id, "answers": utt.answers,
                                           "render_ms": round(1000 * (time.perf_counter() - t1))}))
        seg = Segment(utt, pcm, [], self.clock.samples_per_frame, tail_frames=self.tail_frames, render=stream,
                      speech=speech if speech.words else None)
        log.info("segment voiced", extra={"utterance": utt.id, "turn": utt.turn, "answers": utt.answers,
                                          "frames": seg.total_frames, "voice": speech.engine,
                                          "tts_ms": round(1000 * (t1 - t0))})
        return seg

    def _frames_ahead(self) -> int:
        while self._ahead and self._ahead[0].ended.done():
            self._ahead.popleft()
        return sum(s.total_frames for s in self._ahead)

    async def _make_room(self) -> None:
        while self._frames_ahead() > self.lookahead_frames:
            await reported(self._ahead[0].ended)

    def _queue(self, seg: Segment) -> None:
        loop = asyncio.get_running_loop()

        def on_loop(handler: Callable[[Segment, Any], None]) -> Callable[[Any], None]:
            def forward(fut: Any) -> None:  # clock thread
                if not loop.is_closed():
                    loop.call_soon_threadsafe(handler, seg, fut)
            return forward

        seg.started.add_done_callback(on_loop(self._started))
        seg.ended.add_done_callback(on_loop(self._ended))
        if seg.render is not None:
            self._streams.add(seg.render)
        self._ahead.append(seg)
        self.clock.push(seg)

    # ------------------------------------------------------------------ playback reports (event loop)
    def _started(self, seg: Segment, fut: concurrent.futures.Future[int]) -> None:
        self.now_playing = seg.utterance
        self._tell(PlaybackEvent("start", seg.utterance, fut.result()))

    def _ended(self, seg: Segment, fut: concurrent.futures.Future[Played]) -> None:
        played = fut.result()
        if seg.render in self._streams:  # played out: keep its count, not its audio and poses (24/7: memory flat)
            self._streams.discard(seg.render)
            self._late_done += seg.render.late_frames
        self._frames_ahead()  # and let go of the segments that have played
        if self.now_playing is seg.utterance:
            self.now_playing = None
        if seg.started.done():
            self._tell(PlaybackEvent("end", seg.utterance, played.tick, played.completed, played.frames))

    def _tell(self, ev: PlaybackEvent) -> None:
        for listener in self.on_playback:
            try:
                listener(ev)
            except Exception:
                log.exception("playback listener failed")

    # ------------------------------------------------------------------ commands
    def play_clip(self, clip: Any) -> str:
        """Queue an action clip (its own frames and audio) like a reply of its own; returns its id."""
        utt = Utterance(f"[{clip.name}]", source="action", priority=1)
        seg = Segment(utt, clip.audio, [REST] * clip.frames, self.clock.samples_per_frame, picture=clip.picture)
        self._queue(seg)
        log.info("action clip queued", extra={"clip": clip.name, "frames": clip.frames, "utterance": utt.id})
        return utt.id

    def interrupt(self) -> asyncio.Future[int]:
        """Drop everything queued so far and fade out; resolves to the clock tick where the audio faded."""
        self._renders.cancel()  # stop rendering what will never play
        return asyncio.ensure_future(reported(self.clock.interrupt()))

    async def aclose(self) -> None:
        """Stop background rendering and wait for the render thread."""
        await asyncio.to_thread(self._renders.close)
