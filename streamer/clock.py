"""The output clock: the one thing that paces video and audio together and talks to sinks.

Every tick emits exactly one video frame and exactly one frame's worth of audio samples, from the
current segment or from idle (renderer idle motion + silence), with overlays composited, to every
sink. Deadlines are absolute on a monotonic clock (tick n is due at t0 + n / fps): a late tick is
emitted at once and the next ones catch up, so lateness never accumulates into drift; only a stall
longer than ``max_lag_s`` (a suspended machine) re-anchors the timeline, and that is logged.

The clock never waits for a producer: a queued segment starts only once it is ready to play
through; until then idle continues. An interrupt fades the playing audio to zero within the very
next frame, drops every segment queued before it, and idle resumes on the following tick at the same
idle position (idle motion is a function of the tick index).

Everything the clock owns (its queue, the renderer, the overlay state) changes only on the clock's own
thread: other threads send commands to its inbox (``push``, ``interrupt``, ``set_renderer``,
``update_overlay``), which it applies at the start of the next tick. It reports back through the
futures on each segment (streamer.speech): nobody polls it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from avatars.base import MouthPose
from streamer.sinks.base import SinkWorker, Tick
from streamer.speech import Segment

log = logging.getLogger(__name__)


class Renderer(Protocol):
    """The part of a renderer the clock uses: the frame for a tick, idle (pose None) or speaking."""

    def frame(self, index: int, pose: MouthPose | None = None) -> np.ndarray: ...

    def status(self) -> dict[str, object]:
        """What it reports to the status API (a remote lip-sync renderer: frames covered locally...)."""
        ...


@dataclass
class OverlayState:
    """What the overlays draw; owned by the clock thread, changed through ``update_overlay``."""

    subtitle: str = ""
    words: tuple[Any, ...] = ()
    """Word timings of the subtitle (text, start_s, end_s) when the voice gave them."""
    spoken_s: float = 0.0
    """How far into the subtitle's sentence playback is (for word highlighting)."""
    chat: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=6))
    extra: dict[str, Any] = field(default_factory=dict)
    """Further overlay data by overlay name (product card, gift banner ...)."""


Overlay = Callable[[np.ndarray, OverlayState], None]
Command = Callable[["OutputClock", int], None]


class OutputClock:
    def __init__(self, fps: int, sample_rate: int, renderer: Renderer, sinks: list[SinkWorker],
                 overlays: list[Overlay] | None = None, *, prebuffer_s: float = 0.4, max_lag_s: float = 1.0,
                 time_fn: Callable[[], float] = time.monotonic,
                 wait_fn: Callable[[float], bool] | None = None) -> None:
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
        self._inbox: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._queue: collections.deque[Segment] = collections.deque()
        self._faded: list[concurrent.futures.Future[int]] = []
        self._current: Segment | None = None
        self._pos = 0
        self._fade = False
        self._stop = threading.Event()
        self._wait = wait_fn or self._stop.wait  # returns True when asked to stop
        self._thread: threading.Thread | None = None
        self._silence = np.zeros(self.samples_per_frame, dtype=np.float32)
        # measurements (written by the clock thread only; read as snapshots)
        self.ticks = 0
        self.reanchors = 0
        self.failed_ticks = 0
        self.lateness: collections.deque[float] = collections.deque(maxlen=4096)
        self._emit_times: collections.deque[float] = collections.deque(maxlen=fps * 2)

    # ------------------------------------------------------------------ commands (any thread)
    def push(self, segment: Segment) -> None:
        """Queue a segment to play after everything queued before it."""
        self._send(lambda clock, tick: clock._queue.append(segment))

    def interrupt(self) -> concurrent.futures.Future[int]:
        """Fade out now and drop every segment queued before this call. Resolves to the fade tick."""
        fut: concurrent.futures.Future[int] = concurrent.futures.Future()

        def apply(clock: OutputClock, tick: int) -> None:
            for seg in clock._queue:
                seg.report_end(0, False, tick)
            clock._queue.clear()
            clock._fade = clock._current is not None
            clock._faded.append(fut)  # resolved once this tick's fade is done and reported

        self._send(apply)
        return fut

    def set_renderer(self, renderer: Renderer) -> None:
        """Switch the avatar renderer from the next tick on (a persona switch)."""
        self._send(lambda clock, tick: setattr(clock, "renderer", renderer))

    def update_overlay(self, change: Callable[[OverlayState], None]) -> None:
        """Change what the overlays draw; ``change`` runs on the clock thread before the next tick."""
        self._send(lambda clock, tick: change(clock.overlay_state))

    def _send(self, command: Command) -> None:
        self._inbox.put(command)
        if self._thread is None or not self._thread.is_alive():
            self._apply_commands(self.ticks)  # no clock thread (offline, or stopped): apply it now
            if self._current is None:
                self._resolve_faded(self.ticks)

    # ------------------------------------------------------------------ observations (snapshots)
    def alive(self, within_s: float = 2.0) -> bool:
        """The clock thread runs and emitted a tick in the last ``within_s`` (the health check)."""
        if self._thread is None or not self._thread.is_alive() or not self._emit_times:
            return False
        return time.monotonic() - self._emit_times[-1] < within_s

    def measured_fps(self) -> float:
        times = list(self._emit_times)
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    # ------------------------------------------------------------------ the tick
    def _apply_commands(self, index: int) -> None:
        while True:
            try:
                command = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                command(self, index)
            except Exception:
                log.exception("clock command failed")

    def _next_segment(self, index: int) -> None:
        if self._current is not None or not self._queue or not self._queue[0].ready(self.prebuffer_frames):
            return
        self._current = self._queue.popleft()
        self._pos = 0
        self.overlay_state.subtitle = self._current.text
        speech = self._current.speech
        self.overlay_state.words = tuple(speech.words) if speech is not None else ()
        self.overlay_state.spoken_s = 0.0
        self._current.report_start(index)

    def _finish(self, index: int, completed: bool) -> None:
        seg, played = self._current, self._pos
        self._current = None
        self._pos = 0
        self._fade = False
        self.overlay_state.subtitle = ""
        self.overlay_state.words = ()
        if seg is not None:
            seg.report_end(played, completed, index)

    def produce(self, index: int, deadline: float = 0.0) -> Tick:
        """Compose tick ``index``: one frame and one frame of audio. Never blocks on producers."""
        self._apply_commands(index)
        seg = self._current
        if seg is not None and self._pos >= seg.total_frames:
            self._finish(index, True)
        if self._current is None:
            self._next_segment(index)
        seg = self._current
        if seg is None:
            frame, audio, speaking = self.renderer.frame(index, None), self._silence, False
        else:
            frame, audio = self._speaking_frame(seg, index)
            speaking = True
        self._resolve_faded(index)
        for overlay in self.overlays:
            try:
                overlay(frame, self.overlay_state)
            except Exception:
                log.exception("overlay failed; frame sent without it")
        return Tick(index, frame, audio, speaking, deadline)

    def _resolve_faded(self, index: int) -> None:
        faded, self._faded = self._faded, []
        for fut in faded:
            if not fut.done():
                fut.set_result(index)

    def _speaking_frame(self, seg: Segment, index: int) -> tuple[np.ndarray, np.ndarray]:
        pose = seg.pose(self._pos)
        if pose is None:  # renderer fell behind mid-utterance: hold the mouth, keep the audio going
            pose = seg.pose(max(0, min(self._pos, len(seg.poses)) - 1))
        audio = seg.chunk(self._pos)
        if self._fade:
            audio = audio * np.linspace(1.0, 0.0, audio.size, dtype=np.float32)
        frame = seg.picture(self._pos) if seg.picture is not None else self.renderer.frame(index, pose)
        self._pos += 1
        self.overlay_state.spoken_s = self._pos * self.period
        seg.report_progress(self._pos)
        if self._fade:
            self._finish(index, False)
        return frame, audio

    # ------------------------------------------------------------------ pacing
    def start(self, open_timeout_s: float = 5.0) -> None:
        """Open every sink (in its own thread, all at once), then start ticking from tick 0."""
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
        for seg in [*([self._current] if self._current else []), *self._queue]:
            seg.report_end(0, False, self.ticks)
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
                self._tick(deadline)
            except Exception:  # not even an idle frame: skip this tick rather than stop the clock
                self.ticks += 1
                self.failed_ticks += 1
            self._emit_times.append(self.time_fn())
            n += 1

    def _tick(self, deadline: float) -> None:
        try:
            tick = self.produce(self.ticks, deadline)
        except Exception:
            self.failed_ticks += 1
            if self.failed_ticks in (1, 10, 100) or self.failed_ticks % 1000 == 0:
                log.exception("tick failed; emitting the idle frame", extra={"failed_ticks": self.failed_ticks})
            self._finish(self.ticks, False)
            tick = Tick(self.ticks, self._idle_frame(self.ticks), self._silence, False, deadline)
        self._last_frame = tick.frame
        for s in self.sinks:
            s.push(tick)
        self.ticks += 1

    _last_frame: np.ndarray | None = None

    def _idle_frame(self, index: int) -> np.ndarray:
        try:
            return self.renderer.frame(index, None)
        except Exception:  # the renderer itself is broken: hold the last good frame, keep every sink fed
            if self._last_frame is None:
                raise
            return self._last_frame


    def run_offline(self, ticks: int, write: Callable[[Tick], None]) -> None:
        """Produce ``ticks`` ticks as fast as possible, handing each to ``write`` (``streamer say``)."""
        for _ in range(ticks):
            tick = self.produce(self.ticks, self.ticks * self.period)
            write(tick)
            self.ticks += 1
