"""The speaker alone, through its contract: a Reply in, segments out to a real clock ticking on virtual
time (each tick made by the test, as fast as the event loop turns), with a fake voice."""

import asyncio
import logging

import numpy as np
import pytest

from avatars.base import REST, Capabilities
from avatars.portrait import load_avatar
from avatars.procedural import ProceduralRenderer
from streamer.clock import OutputClock
from streamer.speaker import Speaker, heard_of
from streamer.speech import Reply
from tests.fakes.stages import FakeTTS

FPS, RATE = 25, 16000


class Ticker:
    """Drives the clock one tick per event-loop turn and keeps every tick."""

    def __init__(self, clock):
        self.clock = clock
        self.ticks = []
        self._task = None
        self._ticked = asyncio.Condition()

    async def run(self):
        while True:
            self.clock.run_offline(1, self.ticks.append)
            async with self._ticked:
                self._ticked.notify_all()
            await asyncio.sleep(0)

    async def until(self, condition):
        """Wait tick by tick until ``condition()`` holds (bounded: fails only if nothing moves)."""
        async def wait():
            async with self._ticked:
                await self._ticked.wait_for(condition)
        await asyncio.wait_for(wait(), 30)

    async def __aenter__(self):
        self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def speech(self):
        return np.concatenate([t.audio for t in self.ticks if t.speaking]) if self.ticks else np.zeros(0)


def make(fail=(), lookahead_s=4.0, renderer=None):
    avatar = load_avatar("", 320, 180)
    renderer = renderer or ProceduralRenderer(avatar, FPS)
    clock = OutputClock(FPS, RATE, renderer, [], prebuffer_s=0.0)
    tts = FakeTTS(RATE, fail)
    return Speaker(tts=tts, renderer=renderer, clock=clock, lookahead_s=lookahead_s), clock, tts


async def sentences(*texts, asked=None, clock=None):
    for t in texts:
        if asked is not None:
            asked.append((t, clock.ticks if clock else 0))
        yield t


async def test_a_reply_plays_every_sentence_in_order_and_reports_what_was_heard():
    speaker, clock, tts = make()
    events = []
    speaker.on_playback.append(lambda ev: events.append((ev.kind, ev.utterance.text)))
    async with Ticker(clock) as ticker:
        segs = await speaker.push(Reply("t1", sentences("Hello there.", "这个多少钱？", "Bye now."), answers="ev1"))
    assert [s.text for s in segs] == ["Hello there.", "这个多少钱？", "Bye now."]
    expected = np.concatenate([tts.synthesize_blocking(t) for t in ("Hello there.", "这个多少钱？", "Bye now.")])
    played = ticker.speech()
    assert played.size >= expected.size and np.allclose(played[:expected.size], expected, atol=1e-6)
    heard = heard_of(segs)
    assert heard and [x.text for x in heard.lines] == ["Hello there.", "这个多少钱？", "Bye now."]
    assert all(x.completed for x in heard.lines)
    assert events == [("start", "Hello there."), ("end", "Hello there."), ("start", "这个多少钱？"),
                      ("end", "这个多少钱？"), ("start", "Bye now."), ("end", "Bye now.")]
    assert speaker.now_playing is None


async def test_a_sentence_the_voice_cannot_say_is_skipped_and_a_reply_it_cannot_say_is_not_heard(caplog):
    speaker, clock, _ = make(fail=("secret",))
    async with Ticker(clock):
        segs = await speaker.push(Reply("t1", sentences("First one.", "The secret part.", "Last one.")))
    assert [x.text for x in heard_of(segs).lines] == ["First one.", "Last one."]
    assert "voice failed; skipping sentence" in caplog.text

    speaker, clock, _ = make(fail=("*",))
    async with Ticker(clock) as ticker:
        segs = await speaker.push(Reply("t2", sentences("Nothing.", "At all.")))
    assert not heard_of(segs) and not any(t.speaking for t in ticker.ticks)


async def test_an_interrupt_fades_within_a_frame_and_tells_how_far_the_sentence_got():
    speaker, clock, _ = make()
    segs = []
    async with Ticker(clock) as ticker:
        task = asyncio.create_task(speaker.push(Reply("t1", sentences("A long first sentence here.", "Never said.")),
                                                segs))
        await ticker.until(lambda: segs and segs[0].started.done()
                           and ticker.ticks[-1].index >= segs[0].started.result() + 5)
        task.cancel()
        fade_tick = await speaker.interrupt()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.wrap_future(segs[0].ended)
        n = len(ticker.ticks)
        await ticker.until(lambda: len(ticker.ticks) >= n + 5)
    fade = next(t for t in ticker.ticks if t.index == fade_tick)
    assert fade.audio[-1] == 0.0 and all(not t.audio.any() for t in ticker.ticks if t.index > fade_tick)
    heard = heard_of(segs)
    assert [x.text for x in heard.lines] == ["A long first sentence here."]
    assert not heard.lines[0].completed and 0 < heard.lines[0].fraction < 1


async def test_the_speaker_keeps_no_more_than_its_lookahead_queued():
    speaker, clock, _ = make(lookahead_s=0.5)  # 12 frames; every sentence is longer than that
    ahead = []
    push = clock.push

    def watch(seg):
        ahead.append(speaker._frames_ahead())
        push(seg)

    clock.push = watch
    async with Ticker(clock):
        await speaker.push(Reply("t1", sentences(*(f"Sentence number {i} of the reply." for i in range(5)))))
    frames = 40 * len("Sentence number 0 of the reply.") * FPS // 1000
    assert len(ahead) == 5 and max(ahead) <= speaker.lookahead_frames + frames


async def test_paced_replies_ask_for_the_next_sentence_only_near_the_end_of_the_last():
    speaker, clock, _ = make()
    asked = []
    async with Ticker(clock):
        segs = await speaker.push(Reply("t1", sentences("One idle line.", "Two idle lines.", asked=asked,
                                                        clock=clock), paced=True))
    first = segs[0]
    end_of_first = first.started.result() + first.total_frames
    # the persona was asked for the second line only once the first had nearly played
    assert [t for t, _ in asked] == ["One idle line.", "Two idle lines."]
    assert asked[1][1] >= end_of_first - speaker.tail_frames


class BrokenRenderer(ProceduralRenderer):
    """A batched renderer that fails after its first batch (the real interface, a real failure path)."""

    @property
    def capabilities(self):
        return Capabilities(batched=True, batch=4)

    def render_batches(self, pcm, rate, start_tick=0, sizes=None, base=None):
        yield [REST] * next(sizes)
        raise RuntimeError("GPU fell off the bus")


async def test_a_renderer_that_fails_mid_sentence_is_covered_by_the_procedural_mouth_and_logged_once(caplog):
    caplog.set_level(logging.INFO)
    avatar = load_avatar("", 320, 180)
    speaker, clock, tts = make(renderer=BrokenRenderer(avatar, FPS))
    async with Ticker(clock) as ticker:
        for i in range(2):
            segs = await speaker.push(Reply(f"t{i}", sentences("The audio must go on.")))
            assert heard_of(segs).lines[0].completed
    expected = tts.synthesize_blocking("The audio must go on.")
    assert np.allclose(ticker.speech()[:expected.size], expected, atol=1e-6)
    assert caplog.text.count("render failed") == 1  # logged once, not per sentence
    assert speaker.render_failures == 2 and speaker.late_frames > 0  # counted, and covered frame by frame
    procedural = ProceduralRenderer(avatar, FPS).analyze(expected, RATE)
    assert segs[0].pose(10) == procedural[10] and procedural[10].speaking  # the mouth moves with the voice


class SlowRenderer(ProceduralRenderer):
    """A batched renderer that takes real time per batch, so the clock catches up with it."""

    def __init__(self, avatar, fps, gate):
        super().__init__(avatar, fps)
        self.gate, self.start_ticks, self.sizes = gate, [], []

    @property
    def capabilities(self):
        return Capabilities(batched=True, batch=8, start_tick=True)

    def render_batches(self, pcm, rate, start_tick=0, sizes=None, base=None):
        self.start_ticks.append(start_tick)
        poses = base if base is not None else self.analyze(pcm, rate)
        i = 0
        while i < len(poses):
            n = next(sizes)
            assert self.gate.acquire(timeout=30)
            self.sizes.append(min(n, len(poses) - i))
            yield poses[i:i + n]
            i += n


async def test_playback_starts_after_the_first_small_batch_and_the_clock_never_waits_for_the_renderer():
    import threading

    gate = threading.Semaphore(0)
    avatar = load_avatar("", 320, 180)
    renderer = SlowRenderer(avatar, FPS, gate)
    speaker, clock, _ = make(renderer=renderer)
    segs = []
    async with Ticker(clock) as ticker:
        task = asyncio.create_task(speaker.push(Reply("t1", sentences("A sentence that renders slowly.",
                                                                      "And another one after it.")), segs))
        await ticker.until(lambda: len(ticker.ticks) > 20)
        assert not segs or not segs[0].started.done()  # nothing rendered yet: the clock idles, it does not wait
        gate.release()  # the first batch (4 frames) only
        await ticker.until(lambda: segs and segs[0].started.done())
        await ticker.until(lambda: ticker.ticks[-1].index >= segs[0].started.result() + 8)  # past what is rendered
        for _ in range(200):
            gate.release()
        await asyncio.wait_for(task, 30)
    assert renderer.sizes[0] == speaker.first_batch == 4 and renderer.sizes[1] == 8
    start = segs[0].started.result()
    # each sentence carries its own start tick (for idle-video avatars), planned when it was voiced
    assert len(renderer.start_ticks) == 2 and renderer.start_ticks[0] <= start + 1
    assert renderer.start_ticks[1] >= renderer.start_ticks[0] + segs[0].total_frames
    assert speaker.late_frames > 0  # the clock played on past the render, with procedural mouths
    assert ticker.ticks[-1].index + 1 == len(ticker.ticks)  # one tick after another, none held back


async def test_a_played_sentence_leaves_nothing_behind_but_its_count():
    """A 24/7 host says thousands of sentences: once one has played, its audio and poses are freed (the
    speaker keeps its late-frame count, not the render), so memory stays flat however long it runs."""
    import gc
    import weakref

    gate = __import__("threading").Semaphore(10_000)
    speaker, clock, _ = make(renderer=SlowRenderer(load_avatar("", 320, 180), FPS, gate))
    async with Ticker(clock):
        segs = await speaker.push(Reply("t1", sentences("One sentence.", "两句话。", "Three sentences.")))
    renders = [weakref.ref(s.render) for s in segs]
    late = speaker.late_frames
    del segs
    gc.collect()
    assert all(r() is None for r in renders)
    assert speaker.late_frames == late


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.INFO, logger="streamer.speaker")
