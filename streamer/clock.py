"""The output clock: the one thing that paces video and audio together and talks to sinks.

Every tick emits exactly one video frame and exactly one frame's worth of audio samples, from the
current segment or from idle (renderer idle motion + silence), with overlays composited, to every
sink. Deadlines are absolute on a monotonic clock (tick n is due at t0 + n / fps): a late tick is
emitted at once and the next ones catch up, so lateness never accumulates into drift; only a stall
longer than ``max_lag_s`` (a suspended machine) re-anchors the timeline, and that is logged.

The clock never waits for a producer: a queued segment starts only once it is ready to play
through; until then idle continues. An interrupt fades the playing audio to zero within the very
next frame, drops the queued segments of the interrupted turns, and idle resumes on the following
tick at the same idle position (idle motion is a function of the tick index).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from avatars.base import MouthPose
from streamer.sinks.base import SinkWorker, Tick
from streamer.speech import Segment

log = logging.getLogger(__name__)


class Renderer(Protocol):
    """The part of a renderer the clock uses: the frame for a tick, idle (pose None) or speaking."""

    def frame(self, index: int, pose: MouthPose | None = None) -> np.ndarray: ...


Overlay = Callable[[np.ndarray, "OverlayState"], None]


@dataclass
class OverlayState:
    subtitle: str = ""
    chat: collections.deque = field(default_factory=lambda: collections.deque(maxlen=6))


@dataclass
class PlaybackEvent:
    kind: str  # "start" | "end"
    segment: Segment
    tick: int
    completed: bool = True
    played_frames: int = 0


class OutputClock:
    def __init__(self, fps: int, sample_rate: int, renderer: Renderer, sinks: list[SinkWorker],
                 overlays: list[Overlay] | None = None, *, prebuffer_s: float = 0.4, max_lag_s: float = 1.0,
                 time_fn: Callable[[], float] = time.monotonic,
                 wait_fn: Callable[[float], bool] | None = None,
                 on_playback: Callable[[PlaybackEvent], None] | None = None) -> None:
        if sample_rate % fps:
            raise ValueError(f"sample rate {sample_rate} is not a whole number of samples per frame at {fps} fps")
        self.fps = fps
        self.sample_rate = sample_rate
        self.samples_per_frame = sample_rate // fps
        self.period = 1.0 / fps
        self.renderer = renderer
        self.sinks = sinks
        self.overlays = overlays or []
        self.overlay_state = OverlayState()
        self.prebuffer_frames = max(1, int(prebuffer_s * fps))
        self.max_lag_s = max_lag_s
        self.time_fn = time_fn
        self.on_playback = on_playback
        self._queue: collections.deque[Segment] = collections.deque()
        self._lock = threading.Lock()
        self._interrupts: list[tuple[int, concurrent.futures.Future[int]]] = []
        self._drop_turns_upto = -1
        self._current: Segment | None = None
        self._pos = 0
        self._stop = threading.Event()
        self._wait = wait_fn or self._stop.wait  # returns True when asked to stop
        self._thread: threading.Thread | None = None
        self._silence = np.zeros(self.samples_per_frame, dtype=np.float32)
        # measurements
        self.ticks = 0
        self.reanchors = 0
        self.lateness: collections.deque[float] = collections.deque(maxlen=4096)
        self._emit_times: collections.deque[float] = collections.deque(maxlen=fps * 2)

    # ------------------------------------------------------------------ producer side (any thread)
    def enqueue(self, segment: Segment) -> bool:
        with self._lock:
            if segment.turn <= self._drop_turns_upto:
                return False
            self._queue.append(segment)
            return True

    def queued_frames(self) -> int:
        with self._lock:
            cur = self._current
            left = (cur.total_frames - self._pos) if cur else 0
            return left + sum(s.total_frames for s in self._queue)

    def interrupt(self, upto_turn: int) -> concurrent.futures.Future[int]:
        """Fade out now and drop every segment of turns <= ``upto_turn``. Resolves to the fade tick."""
        fut: concurrent.futures.Future[int] = concurrent.futures.Future()
        with self._lock:
            self._interrupts.append((upto_turn, fut))
            self._drop_turns_upto = max(self._drop_turns_upto, upto_turn)
        if (self._thread is None or not self._thread.is_alive()) and self._current is None:
            self._resolve(self._apply_interrupts()[1], self.ticks)  # nothing plays, and no tick would do it
        return fut

    @property
    def speaking(self) -> Segment | None:
        return self._current

    def measured_fps(self) -> float:
        times = list(self._emit_times)
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    # ------------------------------------------------------------------ the tick
    def _apply_interrupts(self) -> tuple[bool, list[concurrent.futures.Future[int]]]:
        """Drop interrupted segments. Returns whether the current segment fades out on this tick, and
        the futures to resolve once the tick's state is settled."""
        with self._lock:
            if not self._interrupts:
                return False, []
            pending, self._interrupts = self._interrupts, []
            upto = max(t for t, _ in pending)
            self._queue = collections.deque(s for s in self._queue if s.turn > upto)
            fade = self._current is not None and self._current.turn <= upto
        return fade, [fut for _, fut in pending]

    @staticmethod
    def _resolve(futures: list[concurrent.futures.Future[int]], index: int) -> None:
        for fut in futures:
            if not fut.done():
                fut.set_result(index)

    def _next_segment(self, index: int) -> None:
        with self._lock:
            if self._current is not None or not self._queue:
                return
            head = self._queue[0]
            if not head.ready(self.prebuffer_frames):
                return
            self._current = self._queue.popleft()
            self._pos = 0
        self.overlay_state.subtitle = self._current.text
        self._notify(PlaybackEvent("start", self._current, index))

    def _finish(self, index: int, completed: bool) -> None:
        seg, played = self._current, self._pos
        with self._lock:
            self._current = None
            self._pos = 0
        self.overlay_state.subtitle = ""
        if seg is not None:
            self._notify(PlaybackEvent("end", seg, index, completed, played))

    def _notify(self, ev: PlaybackEvent) -> None:
        if self.on_playback:
            try:
                self.on_playback(ev)
            except Exception:
                log.exception("playback listener failed")

    def produce(self, index: int, deadline: float = 0.0) -> Tick:
        """Compose tick ``index``: one frame and one frame of audio. Never blocks on producers."""
        fade, interrupted = self._apply_interrupts()
        if self._current is None:
            self._next_segment(index)
        seg = self._current
        if seg is not None and self._pos >= seg.total_frames:
            self._finish(index, True)
            self._next_segment(index)
            seg = self._current
        if seg is not None:
            pose = seg.pose(self._pos)
            if pose is None:  # renderer fell behind mid-utterance: hold the mouth, keep the audio going
                pose = seg.pose(max(0, min(self._pos, len(seg.poses)) - 1))
            audio = seg.chunk(self._pos).copy()
            if fade:
                audio *= np.linspace(1.0, 0.0, audio.size, dtype=np.float32)
            frame = seg.picture(self._pos) if seg.picture is not None else self.renderer.frame(index, pose)
            self._pos += 1
            speaking = True
            if fade:
                self._finish(index, False)
        else:
            frame = self.renderer.frame(index, None)
            audio = self._silence
            speaking = False
        self._resolve(interrupted, index)
        for overlay in self.overlays:
            try:
                overlay(frame, self.overlay_state)
            except Exception:
                log.exception("overlay failed; frame sent without it")
        return Tick(index, frame, audio, speaking, deadline)

    # ------------------------------------------------------------------ pacing
    def start(self, open_timeout_s: float = 5.0) -> None:
        """Open every sink (in its own thread, all at once), then start ticking from tick 0."""
        # Python hands the GIL to a waiting thread only every switch interval (5 ms by default); the
        # clock and the sinks must not wait that long behind a burst of chat parsing on the loop thread.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        for s in self.sinks:
            s.start()
        deadline = time.monotonic() + open_timeout_s
        for s in self.sinks:
            s.wait_open(max(0.0, deadline - time.monotonic()))
        self._thread = threading.Thread(target=self._run, name="output-clock", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for s in self.sinks:
            s.stop(timeout)

    def _run(self) -> None:
        t0 = self.time_fn()
        n = 0
        while not self._stop.is_set():
            deadline = t0 + n * self.period
            now = self.time_fn()
            if now < deadline:
                if self._wait(deadline - now):
                    break
                now = self.time_fn()
            elif now - deadline > self.max_lag_s:
                self.reanchors += 1
                log.warning("clock stalled; re-anchoring the timeline", extra={"late_s": round(now - deadline, 3)})
                t0 = now - n * self.period
                deadline = now
            self.lateness.append(now - deadline)
            try:
                tick = self.produce(self.ticks, deadline)
            except Exception:
                log.exception("tick failed; emitting the idle frame")
                self._finish(self.ticks, False)
                tick = Tick(self.ticks, self.renderer.frame(self.ticks, None), self._silence, False, deadline)
            for s in self.sinks:
                s.offer(tick)
            self._emit_times.append(self.time_fn())
            self.ticks += 1
            n += 1

    def run_offline(self, ticks: int, write: Callable[[Tick], None]) -> None:
        """Produce ``ticks`` ticks as fast as possible, handing each to ``write`` (``streamer say``)."""
        for _ in range(ticks):
            tick = self.produce(self.ticks, self.ticks * self.period)
            write(tick)
            self.ticks += 1
