"""The render stream the speaker drives: a small first batch, then full ones, rendered ahead of the clock;
the clock reads poses without ever waiting (late frames get the procedural mouth, counted); a cancelled
or failing render stops cleanly, a failure is logged once and covered by procedural frames."""

import asyncio
import logging
import threading

import numpy as np
import pytest

from avatars import load_avatar
from avatars.base import Capabilities, Renderer
from avatars.procedural import ProceduralRenderer
from avatars.stream import RenderStream, RenderWorker

RATE = 48000


def voice(seconds, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 170 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t))).astype(np.float32)


class GatedRenderer(ProceduralRenderer):
    """A batched renderer whose batches are released one by one by the test (the real interface)."""

    name = "gated"

    def __init__(self, avatar, fps, fail_at=None):
        super().__init__(avatar, fps)
        self.release = threading.Semaphore(0)
        self.sizes = []
        self.fail_at = fail_at
        self.start_ticks = []

    @property
    def capabilities(self):
        return Capabilities(batched=True, batch=8)

    def render_batches(self, pcm, rate, start_tick=0, sizes=None, base=None):
        self.start_ticks.append(start_tick)
        base = base if base is not None else self.analyze(pcm, rate)
        start = 0
        while start < len(base):
            size = next(sizes)
            if not self.release.acquire(timeout=30):
                raise AssertionError("the test never released the batch")
            if self.fail_at is not None and start >= self.fail_at:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            batch = base[start:start + size]
            self.sizes.append(len(batch))
            yield batch
            start += size


@pytest.fixture(scope="module")
def avatar():
    return load_avatar("", 320, 180)


def test_renderers_declare_the_interface(avatar):
    r = ProceduralRenderer(avatar, 25)
    assert isinstance(r, Renderer)
    assert r.capabilities == Capabilities(batched=False, batch=0, start_tick=False)
    stream = RenderStream(r, voice(1.0), RATE)
    stream.run()
    assert stream.ready() and stream.rendered == stream.frames == 25 and stream.late_frames == 0


def test_first_batch_is_small_then_full_batches_and_late_frames_fall_back(avatar):
    r = GatedRenderer(avatar, 25)
    now = [0.0]
    stream = RenderStream(r, voice(1.0), RATE, start_tick=77, first_batch=3, clock=lambda: now[0])
    assert stream.frames == 25 and not stream.ready()
    worker = RenderWorker()
    worker.start()
    try:
        worker.submit(stream)
        assert not stream.first_batch_done.done()
        late = stream.pose(0)  # the clock asks before anything is rendered: no waiting
        assert late is stream.fallback[0] and stream.behind(0) and stream.late_frames == 1
        r.release.release()
        assert stream.first_batch_done.result(timeout=30) == 3
        assert r.start_ticks == [77]  # the start tick travels with the sentence, not through the renderer
        assert not stream.behind(2) and stream.behind(3)
        for _ in range(3):
            r.release.release()
        assert stream.done.result(timeout=30) == 25
        assert r.sizes == [3, 8, 8, 6]
        stream.pose(24)
        assert stream.late_frames == 1 and not stream.behind(24)  # rendered frames are not late
    finally:
        worker.close()


class Driven:
    """Runs a stream in a thread and releases its batches one at a time on a virtual clock."""

    def __init__(self, renderer, stream, now):
        self.renderer, self.stream, self.now = renderer, stream, now
        self.got = threading.Semaphore(0)
        self.thread = threading.Thread(target=stream.run, args=(lambda batch: self.got.release(),))
        self.thread.start()

    def batch_after(self, seconds):
        self.now[0] += seconds
        self.renderer.release.release()
        assert self.got.acquire(timeout=30)

    def finish(self):
        self.stream.cancel()
        for _ in range(40):
            self.renderer.release.release()
        self.thread.join(timeout=30)


def test_ready_starts_after_the_first_batch_when_rendering_outpaces_playback(avatar):
    r, now = GatedRenderer(avatar, 25), [0.0]
    d = Driven(r, RenderStream(r, voice(4.0), RATE, first_batch=4, batch=4, clock=lambda: now[0]), now)
    try:
        assert not d.stream.ready()
        d.batch_after(0.08)  # 4 frames in 80 ms: twice real time
        assert d.stream.ready()
    finally:
        d.finish()


def test_ready_buffers_what_a_slow_renderer_needs_and_never_waits_too_long(avatar):
    r, now = GatedRenderer(avatar, 25), [0.0]
    stream = RenderStream(r, voice(4.0), RATE, first_batch=4, batch=4, max_wait_s=30.0, clock=lambda: now[0])
    d = Driven(r, stream, now)
    try:
        d.batch_after(0.32)  # 12.5 frames/s, half real time: half of the 100 frames must be there first
        while stream.rendered < 48:
            assert not stream.ready()
            d.batch_after(0.32)
        assert not stream.ready()
        d.batch_after(0.32)
        assert stream.rendered == 52 and stream.ready()
    finally:
        d.finish()
    r, now = GatedRenderer(avatar, 25), [0.0]
    stream = RenderStream(r, voice(4.0), RATE, first_batch=4, batch=4, max_wait_s=1.0, clock=lambda: now[0])
    d = Driven(r, stream, now)
    try:
        d.batch_after(0.32)
        assert not stream.ready(1.0) and stream.ready(1.32)  # then the procedural mouth covers what is late
    finally:
        d.finish()


def test_cancel_stops_after_the_current_batch_and_drops_what_is_queued(avatar):
    r = GatedRenderer(avatar, 25)
    worker = RenderWorker()
    worker.start()
    try:
        first = worker.submit(RenderStream(r, voice(2.0), RATE, first_batch=2))
        second = worker.submit(RenderStream(r, voice(1.0), RATE))
        r.release.release()
        assert first.first_batch_done.result(timeout=30) == 2
        worker.cancel()
        r.release.release()  # the batch in flight may finish; nothing after it
        assert first.done.result(timeout=30) <= 10 and first.cancelled
        assert second.cancelled and second.done.result(timeout=30) == 0 and second.first_batch_done.done()
        assert second.pose(3) is second.fallback[3]  # still playable (procedural) if the clock had it
    finally:
        worker.close()


def test_a_failing_render_is_covered_by_procedural_frames_and_logged_once(avatar, caplog):
    r = GatedRenderer(avatar, 25, fail_at=8)
    worker = RenderWorker()
    worker.start()
    caplog.set_level(logging.ERROR, logger="avatars.stream")
    try:
        streams = [worker.submit(RenderStream(r, voice(1.0), RATE, first_batch=8)) for _ in range(2)]
        for _ in range(4):
            r.release.release()
        for s in streams:
            assert s.done.result(timeout=30) == 8
            assert s.error is not None and s.first_batch_done.result() == 8
            assert s.pose(20) is s.fallback[20] and s.fallback[20].speaking  # the mouth keeps moving
        failures = [rec for rec in caplog.records if "render failed" in rec.getMessage()]
        assert len(failures) == 1 and failures[0].exc_info is not None
        assert sum(worker.failures.values()) == 2
    finally:
        worker.close()


async def test_the_speaker_awaits_the_first_batch_without_polling(avatar):
    r = GatedRenderer(avatar, 25)
    worker = RenderWorker()
    worker.start()
    try:
        stream = worker.submit(RenderStream(r, voice(1.0), RATE, first_batch=4))
        waiter = asyncio.ensure_future(asyncio.wrap_future(stream.first_batch_done))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        r.release.release()
        assert await asyncio.wait_for(waiter, 30) == 4
        for _ in range(3):
            r.release.release()
        assert await asyncio.wait_for(asyncio.wrap_future(stream.done), 30) == 25
    finally:
        await asyncio.to_thread(worker.close)


def test_zero_length_audio_is_an_empty_finished_stream(avatar):
    stream = RenderStream(ProceduralRenderer(avatar, 25), np.zeros(0, np.float32), RATE)
    assert stream.frames == 0 and stream.done.result(timeout=1) == 0 and stream.ready()
