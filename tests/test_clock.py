"""The output clock on fakes: exact A/V per tick, readiness, interrupt fade, isolation, no drift."""

import threading

import numpy as np
import pytest

from avatars.base import MouthPose
from streamer.clock import OutputClock
from streamer.sinks.base import Sink, SinkWorker
from streamer.speech import Segment, Utterance

FPS, RATE = 25, 16000
SPF = RATE // FPS


class FakeRenderer:
    def __init__(self):
        self.calls = []

    def frame(self, index, pose=None):
        self.calls.append((index, pose))
        f = np.zeros((8, 8, 3), np.uint8)
        f[0, 0, 0] = index % 256
        f[0, 0, 1] = 0 if pose is None else 1 + int(pose.open * 200)
        return f


def segment(turn, frames, value=0.5, poses=None):
    audio = np.full(frames * SPF, value, np.float32)
    ps = poses if poses is not None else [MouthPose(0.5, 0.5, 0.5)] * frames
    return Segment(Utterance(f"turn {turn}", f"turn{turn}"), audio, ps, SPF)


def make_clock(**kw):
    return OutputClock(FPS, RATE, FakeRenderer(), [], **kw)


def run_ticks(clock, n):
    out = []
    clock.run_offline(n, out.append)
    return out


def test_every_tick_is_one_frame_and_one_frame_of_audio_in_order():
    clock = make_clock(prebuffer_s=0.0)
    ramp = np.arange(10 * SPF, dtype=np.float32) / (10 * SPF)
    seg = Segment(Utterance("x"), ramp, [MouthPose(0.3, 0.5, 0.1)] * 10, SPF)
    run_ticks(clock, 3)
    clock.push(seg)
    ticks = run_ticks(clock, 15)
    assert all(t.audio.shape == (SPF,) and t.frame.shape == (8, 8, 3) for t in ticks)
    played = np.concatenate([t.audio for t in ticks if t.speaking])
    np.testing.assert_array_equal(played, ramp)  # nothing lost, duplicated or reordered
    assert [t.index for t in ticks] == list(range(3, 18))
    # speech continues from the idle position: the renderer always sees the global tick index
    assert [i for i, _ in clock.renderer.calls] == list(range(18))
    # the clock reported where the segment started and that it played to the end
    assert seg.started.result(timeout=0) == 3 and seg.ended.result(timeout=0).completed
    assert seg.ended.result(timeout=0).frames == 10


def test_segment_waits_until_it_can_play_through():
    clock = make_clock(prebuffer_s=0.4)  # 10 frames
    seg = segment(1, 40, poses=[MouthPose(0.5, 0.5, 0.5)] * 4)
    clock.push(seg)
    ticks = run_ticks(clock, 5)
    assert not any(t.speaking for t in ticks) and all(not t.audio.any() for t in ticks)  # idle, not a stutter
    assert not seg.started.done()
    seg.extend_poses([MouthPose(0.5, 0.5, 0.5)] * 8)
    assert run_ticks(clock, 1)[0].speaking and seg.started.result(timeout=0) == 5


def test_interrupt_fades_within_one_frame_drops_the_turn_and_idles():
    clock = make_clock(prebuffer_s=0.0)
    first, second = segment(1, 20), segment(1, 20)
    clock.push(first)
    clock.push(second)
    run_ticks(clock, 5)
    fut = clock.interrupt()
    ticks = run_ticks(clock, 10)
    faded_at = fut.result(timeout=1)
    fade = ticks[0]
    assert faded_at == fade.index == 5
    assert fade.audio[0] == pytest.approx(0.5) and fade.audio[-1] == 0.0
    assert np.all(np.diff(fade.audio) <= 0)  # a monotone ramp down inside that one frame
    assert all(not t.speaking and not t.audio.any() for t in ticks[1:])
    # the clock says how far each segment got: the first cut after 6 frames, the second never started
    assert first.ended.result(timeout=0).frames == 6 and not first.ended.result(timeout=0).completed
    assert not second.started.done() and second.ended.result(timeout=0).frames == 0
    # idle resumes where the tick counter is: no jump back in the idle loop
    assert [i for i, _ in clock.renderer.calls][-10:] == list(range(5, 15))
    # what is pushed after the interrupt plays
    clock.push(segment(2, 5))
    assert run_ticks(clock, 1)[0].speaking


class VirtualTime:
    """A monotonic clock that only moves when the clock under test sleeps (or a tick is made slow)."""

    def __init__(self, stop_after):
        self.now = 1000.0
        self.stop_after = stop_after
        self.emitted = []

    def time(self):
        return self.now

    def wait(self, seconds):
        self.now += seconds
        return len(self.emitted) >= self.stop_after


def test_late_ticks_catch_up_without_drift():
    vt = VirtualTime(stop_after=500)

    class Recorder(Sink):
        pass

    clock = make_clock(time_fn=vt.time, wait_fn=vt.wait)
    slow_ticks = {100: 0.13, 200: 0.5, 300: 0.03}  # a GC pause, a long stall, a hiccup (seconds)
    produce = clock.produce

    def produce_and_stall(index, deadline):
        vt.now += slow_ticks.get(index, 0.0)
        vt.emitted.append((index, deadline, vt.now))
        return produce(index, deadline)

    clock.produce = produce_and_stall
    clock._run()
    idx = np.array([e[0] for e in vt.emitted])
    deadlines = np.array([e[1] for e in vt.emitted])
    assert (np.diff(idx) == 1).all()
    np.testing.assert_allclose(deadlines - deadlines[0], idx / FPS, atol=1e-9)  # absolute deadlines: no drift
    emitted_at = np.array([e[2] for e in vt.emitted])
    lateness = emitted_at - deadlines
    assert lateness[214:300].max() < 1e-9 and lateness[302:].max() < 1e-9  # caught up, not carried
    assert lateness[201] == pytest.approx(0.5 - 1 / FPS)  # the stalled ticks went out at once
    assert clock.reanchors == 0


def test_a_machine_suspend_reanchors_once():
    vt = VirtualTime(stop_after=60)
    clock = make_clock(time_fn=vt.time, wait_fn=vt.wait)
    produce = clock.produce

    def produce_and_suspend(index, deadline):
        if index == 30:
            vt.now += 5.0
        vt.emitted.append(index)
        return produce(index, deadline)

    clock.produce = produce_and_suspend
    clock._run()
    assert clock.reanchors == 1 and clock.ticks == 60


def test_commands_to_a_clock_that_is_not_ticking_apply_at_once():
    clock = make_clock()
    assert clock.interrupt().result(timeout=0) == 0  # a stopped clock never leaves its caller waiting
    clock.update_overlay(lambda state: state.chat.append("Ann: hi"))
    assert list(clock.overlay_state.chat) == ["Ann: hi"]


class StuckSink(Sink):
    """A device that hangs forever on its first write (until the test releases it)."""

    name = "stuck"

    def __init__(self):
        self.release = threading.Event()

    def write(self, tick):
        self.release.wait(30)


class CountingSink(Sink):
    name = "counting"

    def __init__(self, expected):
        self.indices = []
        self.done = threading.Event()
        self.expected = expected

    def write(self, tick):
        self.indices.append(tick.index)
        if len(self.indices) == self.expected:
            self.done.set()


class BrokenSink(Sink):
    name = "broken"

    def __init__(self):
        self.closed = threading.Event()

    def write(self, tick):
        raise OSError("device unplugged")

    def close(self):  # the worker closes a sink once it has given up on it
        self.closed.set()


def test_a_stuck_or_broken_sink_never_stalls_the_clock_or_other_sinks():
    vt = VirtualTime(stop_after=100)
    good, stuck, broken = SinkWorker(CountingSink(100), max_queue=128), SinkWorker(StuckSink(), max_queue=2), SinkWorker(BrokenSink())
    clock = OutputClock(FPS, RATE, FakeRenderer(), [good, stuck, broken], time_fn=vt.time, wait_fn=vt.wait)
    produce = clock.produce

    def produce_and_count(index, deadline):
        vt.emitted.append(index)
        return produce(index, deadline)

    clock.produce = produce_and_count
    for w in clock.sinks:
        w.start()
    try:
        clock._run()  # on virtual time: it returns only if no sink could hold it up
        assert clock.ticks == 100 and max(clock.lateness) == 0.0
        assert good.sink.done.wait(30) and good.sink.indices == list(range(100))  # every tick, in order
        assert stuck.dropped >= 97  # the stuck one lost its oldest ticks, nobody else did
        assert broken.sink.closed.wait(30)  # its worker thread may run only now on a loaded machine
        assert broken.failed and "device unplugged" in broken.failed
    finally:
        stuck.sink.release.set()
        for w in clock.sinks:
            w.stop()
