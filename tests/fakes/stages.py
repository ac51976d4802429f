"""Fakes that implement the real stage contracts, for running one stage alone (like pipecat's run_test):
feed a stage its typed input, collect its typed output, on virtual time where timing matters."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import numpy as np

from streamer.speaker import PlaybackEvent
from streamer.speech import Reply, Segment, Utterance
from streamer.voice.base import TTS, TTSError


class VirtualClock:
    """A monotonic time that moves only when a test says so."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeSpeaker:
    """The speaker's contract (push a Reply, get its segments back) with virtual playback: every sentence
    is heard at once, unless ``heard`` says otherwise (a voice that fails, an output filter that drops)."""

    def __init__(self, heard: bool = True) -> None:
        self.heard = heard
        self.replies: list[tuple[Reply, list[str]]] = []
        self.on_playback: list = []
        self.interrupts = 0
        self.changed = asyncio.Condition()
        self.tick = 0

    @property
    def said(self) -> list[list[str]]:
        return [s for _, s in self.replies]

    async def push(self, reply: Reply, segments: list[Segment] | None = None) -> list[Segment]:
        out = segments if segments is not None else []
        said: list[str] = []
        async with aclosing(reply.sentences) as sentences:
            async for text in sentences:
                said.append(text)
                utt = Utterance(text, reply.turn, reply.answers, reply.source, reply.priority)
                seg = Segment(utt, np.zeros(640, np.float32), [], 640)
                out.append(seg)
                if self.heard:
                    self.tick += 1
                    seg.report_start(self.tick)
                    for listener in self.on_playback:
                        listener(PlaybackEvent("start", utt, self.tick))
                    seg.report_end(1, True, self.tick)
                else:
                    seg.report_end(0, False, self.tick)
                async with self.changed:
                    self.changed.notify_all()
                await asyncio.sleep(0)
        self.replies.append((reply, said))
        async with self.changed:
            self.changed.notify_all()
        return out

    async def until(self, condition, timeout: float = 10.0) -> None:
        """Wait (event-driven) until ``condition(self)`` holds; fails only if the director is stuck."""
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: condition(self))
        await asyncio.wait_for(wait(), timeout)

    def interrupt(self) -> asyncio.Future[int]:
        self.interrupts += 1
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(self.tick)
        return fut


class FakeTTS(TTS):
    """A voice that says each sentence as a tone of 40 ms per character; ``fail`` names sentences it
    cannot say (``"*"``: none at all)."""

    name = "fake"
    retries = 0

    def __init__(self, output_rate: int = 16000, fail: tuple[str, ...] = ()) -> None:
        super().__init__(output_rate)
        self.fail = fail
        self.spoken: list[str] = []

    def _synthesize(self, text: str) -> tuple[np.ndarray, int]:
        if "*" in self.fail or any(f in text for f in self.fail):
            raise TTSError(f"fake voice cannot say {text!r}")
        self.spoken.append(text)
        n = int(0.04 * self.output_rate * max(1, len(text)))
        t = np.arange(n, dtype=np.float32) / self.output_rate
        return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), self.output_rate
