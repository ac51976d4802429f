"""The speaking chain of one reply: sentences -> voice (TTS) -> renderer (mouth poses) -> clock.

Sentences are synthesised one at a time in a worker thread while earlier ones play, bounded by a
look-ahead so nothing piles up in front of the clock. Each reply is a numbered *turn*; an interrupt
cancels the asyncio task that runs the chain (persona stream, TTS wait, render wait) and tells the
clock to drop every segment of that turn and fade out within one frame.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Any, Protocol

import numpy as np

from avatars.base import REST, MouthPose
from streamer.clock import OutputClock
from streamer.speech import Segment, Utterance
from streamer.voice.base import TTS, TTSError

log = logging.getLogger(__name__)


class PoseRenderer(Protocol):
    def analyze(self, pcm: np.ndarray, rate: int) -> list[MouthPose]: ...


class Speaker:
    def __init__(self, tts: TTS, renderer: PoseRenderer, clock: OutputClock, lookahead_s: float = 4.0) -> None:
        self.tts = tts
        self.renderer = renderer
        self.clock = clock
        self.lookahead_frames = int(lookahead_s * clock.fps)
        self._turns = 0
        self.stage_times: dict[str, float] = {}
        self._fillers: set[asyncio.Task[None]] = set()
        self._cancel_flags: collections.deque[threading.Event] = collections.deque(maxlen=64)

    @staticmethod
    def _fill(seg: Segment, batches: Iterator[list[MouthPose]]) -> None:
        for batch in batches:
            seg.extend_poses(batch)

    def new_turn(self) -> int:
        self._turns += 1
        return self._turns

    @property
    def last_turn(self) -> int:
        return self._turns

    async def speak(self, utterance: Utterance, sentences: AsyncGenerator[str, None], turn: int) -> int:
        """Queue every sentence of one reply on the clock; return the number of segments queued."""
        queued = 0
        async with aclosing(sentences):  # a cancelled turn closes the whole generator chain now, not at GC
            async for sentence in sentences:
                queued += await self._speak_sentence(utterance, sentence, turn)
        return queued

    async def _speak_sentence(self, utterance: Utterance, sentence: str, turn: int) -> int:
        """Voice and render one sentence, wait for room on the clock, queue it. 1 if queued, else 0."""
        t0 = time.perf_counter()
        try:
            pcm = await self.tts.synthesize(sentence)
        except TTSError as e:
            log.error("voice failed; skipping sentence", extra={"utterance": utterance.id, "error": str(e)})
            return 0
        t1 = time.perf_counter()
        if pcm.size == 0:
            return 0
        stream = getattr(self.renderer, "analyze_stream", None)
        cancelled = threading.Event()
        if stream is None:
            poses = await asyncio.to_thread(self.renderer.analyze, pcm, self.clock.sample_rate)
            batches: Iterator[list[MouthPose]] | None = None
        else:  # a neural renderer: speech can start after its first batch, the rest renders while it plays
            if hasattr(self.renderer, "start_hint"):  # idle-video avatars: render against the frames it will play on
                self.renderer.start_hint = self.clock.ticks + self.clock.queued_frames() + self.clock.prebuffer_frames
            batches = stream(pcm, self.clock.sample_rate, cancelled)
            poses = list(await asyncio.to_thread(next, batches, []))
        t2 = time.perf_counter()
        self.stage_times = {"tts_s": t1 - t0, "render_s": t2 - t1}
        seg = Segment(utterance, turn, sentence, pcm, poses, self.clock.samples_per_frame, created=time.monotonic())
        try:
            while self.clock.queued_frames() > self.lookahead_frames:
                await asyncio.sleep(0.04)
            if not self.clock.enqueue(seg):
                cancelled.set()
                return 0
            if batches is not None:
                filler = asyncio.create_task(asyncio.to_thread(self._fill, seg, batches))
                self._fillers.add(filler)
                filler.add_done_callback(self._fillers.discard)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        self._cancel_flags.append(cancelled)
        log.info("segment queued", extra={"utterance": utterance.id, "answers": utterance.answers, "turn": turn,
                                          "frames": seg.total_frames, "tts_ms": round(1000 * (t1 - t0)),
                                          "render_ms": round(1000 * (t2 - t1))})
        return 1

    async def wait_played(self, turn: int, tail_s: float = 0.0) -> None:
        """Wait until the clock has (almost) finished playing ``turn``."""
        tail = int(tail_s * self.clock.fps)
        while True:
            playing = self.clock.speaking
            left = self.clock.queued_frames()
            if (playing is None or playing.turn != turn) and left == 0:
                return
            if playing is not None and playing.turn == turn and left <= tail:
                return
            await asyncio.sleep(0.04)

    def play_clip(self, clip: Any) -> int:
        """Queue an action clip (its frames and audio) like a reply of its own; returns its turn."""
        turn = self.new_turn()
        n = clip.frames
        seg = Segment(Utterance(f"[{clip.name}]", 1, source="action"), turn, "", clip.audio, [REST] * n,
                      self.clock.samples_per_frame, created=time.monotonic(), picture=clip.picture)
        self.clock.enqueue(seg)
        log.info("action clip queued", extra={"clip": clip.name, "frames": n, "turn": turn})
        return turn

    async def aclose(self) -> None:
        """Stop background rendering and wait for it."""
        for flag in self._cancel_flags:
            flag.set()
        await asyncio.gather(*self._fillers, return_exceptions=True)

    def interrupt(self) -> asyncio.Future[int]:
        """Drop every turn issued so far; resolves to the clock tick where the audio faded out."""
        for flag in self._cancel_flags:  # stop rendering what will never play
            flag.set()
        return asyncio.wrap_future(self.clock.interrupt(self._turns))
